"""Chinese sentence boundaries, in one place.

Two splitters, because two kinds of text are split for different readers:

- document text (`split_sentences`, `sentence_spans`): what the chunker packs into chunks, what
  citations quote and what the extractive answerer picks. Sentence ends are Chinese 。！？；…
  and ASCII !?; (an ASCII '.' only when a letter precedes it and whitespace follows, so "1.5万"
  and "1.选准载体" are not cut); closing quotes/brackets after the end stay with their sentence,
  and so do the spaces after it; a newline always ends a sentence.
- answer text (`statement_spans`): the statements a model's answer makes. They end only at
  。！？!? and line breaks (`STATEMENT_ENDS`), because that is where a citation marker's
  statement begins (`rag.text.markers.statements` reads a marker as closing the text back to
  the previous such end): splitting an answer at ；, … or after a closing quote would make
  statements the marker reader never sees, and a marker added there would be read back as
  citing a longer text than it was checked against.
"""

from __future__ import annotations

import re

# Closing quotes/brackets that stay with the sentence they close: 他说：“好。” is one sentence.
CLOSERS = "”’」』）)】》〉〕\"'］]"
_SENT_RE = re.compile(
    r"(?:[。！？；…!?;]+|(?<=[A-Za-z])\.(?=\s))[" + re.escape(CLOSERS) + r"]*[ \t\u3000\xa0]*\n*|\n+"
)

#: Where an answer statement ends (see the module docstring).
STATEMENT_ENDS = "。！？!?\n"
_STATEMENT_RE = re.compile("[" + re.escape(STATEMENT_ENDS) + "]+")


def _pieces(text: str) -> list[tuple[int, int]]:
    """Consecutive [start, end) pieces covering all of `text`, each ending at a sentence end."""
    out: list[tuple[int, int]] = []
    pos = 0
    for m in _SENT_RE.finditer(text):
        end = m.end()
        if end > pos:
            out.append((pos, end))
            pos = end
    if pos < len(text):
        out.append((pos, len(text)))
    return out


def _trimmed(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`spans` without surrounding whitespace; whitespace-only spans are dropped."""
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


def split_sentences(text: str) -> list[str]:
    """The sentences of document text, lossless: `"".join(result) == text` always (trailing
    spaces and line breaks stay on the sentence they follow), so spans follow from the lengths.

    >>> split_sentences("他说：“好。”然后走了！\\n第二行；真的吗？！是的……好吧")
    ['他说：“好。”', '然后走了！\\n', '第二行；', '真的吗？！', '是的……', '好吧']
    >>> split_sentences("增长1.5万人次。He left. OK")
    ['增长1.5万人次。', 'He left. ', 'OK']
    """
    return [text[a:b] for a, b in _pieces(text)]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of each sentence of `split_sentences(text)` in `text`, trimmed of
    surrounding whitespace; whitespace-only pieces are skipped.

    >>> t = " 第一句。」\\n\\n  第二句！"
    >>> [t[a:b] for a, b in sentence_spans(t)]
    ['第一句。」', '第二句！']
    >>> sentence_spans(" \\n ")
    []
    """
    return _trimmed(text, _pieces(text))


def statement_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of each statement of *answer* text: up to and including a run of
    `STATEMENT_ENDS`, trimmed of surrounding whitespace (so a marker inserted at a statement's
    end goes before its punctuation, never after a line break).

    >>> t = "甲是一；乙是二。\\n\\n丙是三【1】！丁"
    >>> [t[a:b] for a, b in statement_spans(t)]
    ['甲是一；乙是二。', '丙是三【1】！', '丁']
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _STATEMENT_RE.finditer(text):
        spans.append((start, m.end()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return _trimmed(text, spans)


# a sentence opening with a pronoun or connective reads on from the one before it
_LEANS = re.compile(r"^\s*(?:其|该|該|这|這|此|那|它|他们|她们|他們|她們|同时|同時|并|並|而且|此外|另外|因此|所以|为此|為此|对此|對此|其中)")


def leans_on_previous(sentence: str) -> bool:
    """Does `sentence` need the sentence before it to be understood ("其中男党员16人")?

    >>> leans_on_previous("其中男党员16人。"), leans_on_previous("為此，我們設立了獎項。"), leans_on_previous("全村有党员29人。")
    (True, True, False)
    """
    return bool(_LEANS.match(sentence))
