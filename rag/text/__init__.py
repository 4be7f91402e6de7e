"""Text primitives shared by every stage, one home for each idea (pure functions, no I/O):

- `rag.text.markers`   the 【n】 citation-marker grammar: parse, strip, canonical form, defuse
                       document text, and the statement a marker group closes;
- `rag.text.sentences` the Chinese sentence splitter (documents) and the answer statement splitter;
- `rag.text.match`     the quote matcher: a script/width/space-folded key with an offset map;
- `rag.text.grams`     character bigrams of the metric form and bigram recall;
- `rag.text.pinyin`    romanised Chinese names in English text, found in Chinese text;
- `rag.text.english`   the Chinese a model copied into an English answer, put into English.

Import the submodules directly (`from rag.text.markers import parse_markers`); nothing heavy
is re-exported here.
"""
