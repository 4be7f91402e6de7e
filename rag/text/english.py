"""Chinese that bleeds into an English answer, put into English a reader can quote.

A small model answering an English question over Chinese passages copies Chinese into its
English: the prompt's own word for the documents ("According to the existing资料, …"), units
after numbers ("600元"), names ("… is岳丹") and terms ("develop大棚 vegetables"). On the seed
set's English questions 11 of 29 answers of the default 1.5B model did (runs/seeds-llm4). A user
pasting the answer into an English report needs English, and needs the Chinese form of a name or
term to find it in the source, so:

- a number with a Chinese unit becomes the number in English units ("800万元" → "8 million
  yuan"); units without a clear English word keep the Chinese in parentheses;
- the prompt's words for the documents become "documents";
- any other Chinese run becomes Hanyu Pinyin followed by the Chinese in parentheses
  ("Yue Dan (岳丹)"), capitalised when jieba tags it as a name of a person, place or body;
- Chinese punctuation between English words becomes English punctuation.

Chinese the model put in parentheses or quotation marks is a gloss it wrote on purpose
("set up in 2005 (安达市委于2005年成立)", 'the "一站三中心" model') and stays as it is.

A statement that is mostly Chinese (the model answered in Chinese) is left alone: pinyin soup
is worse than Chinese. The claim check runs on the statement as the model wrote it (its Chinese
helps the check); this only changes what is shown.

Deliberate compromise: jieba's part-of-speech tags on a short run out of context are a guess,
so a name may come out in lower case or a term capitalised; the Chinese in parentheses keeps
either one findable.
"""

from __future__ import annotations

import re

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RUN = re.compile(rf"[{_CJK}]+")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")

# the prompt's (rag.answer.prompts) words for the evidence, which the model echoes
_DOCUMENTS = re.compile(r"(?:[Tt]he\s*)?(?:(?:existing|available)\s*)?(?:现有|現有)?(?:资料|資料)")

_MAG = {"万": 10_000, "萬": 10_000, "亿": 100_000_000, "億": 100_000_000}
_UNITS = {
    "元": "yuan", "亩": "mu", "畝": "mu", "公里": "km", "千米": "km", "米": "m", "平方米": "m²",
    "平方公里": "km²", "吨": "tonnes", "噸": "tonnes", "公斤": "kg", "千克": "kg", "户": "households",
    "戶": "households", "人": "people", "名": "people", "位": "people", "岁": "years old",
    "歲": "years old", "个": "", "個": "", "次": "times", "人次": "person-times", "天": "days",
    "年": "", "%": "%",
}
_UNIT_ALT = "|".join(sorted((re.escape(u) for u in _UNITS if u != "%"), key=len, reverse=True))
_QUANTITY = re.compile(rf"(\d[\d,]*(?:\.\d+)?)\s*([万萬亿億])?\s*({_UNIT_ALT})?")
_PUNCT = {"，": ", ", "。": ". ", "：": ": ", "；": "; ", "！": "! ", "？": "? ", "（": " (", "）": ") ",
          "“": '"', "”": '"', "‘": "'", "’": "'", "、": ", "}
_NAME_TAGS = ("nr", "ns", "nt", "nz")
_GLOSS = re.compile(r'（[^（）]*）|\([^()]*\)|“[^“”]*”|"[^"]*"|「[^「」]*」|『[^『』]*』')


def _number(value: float) -> str:
    """`8000000.0` → '8 million', `32000.0` → '32,000', `2.5` → '2.5'.

    >>> _number(8_000_000.0), _number(32_000.0), _number(2.5), _number(120_000_000.0)
    ('8 million', '32,000', '2.5', '120 million')
    """
    for size, word in ((1_000_000_000, "billion"), (1_000_000, "million")):
        if value >= size and round(value / size, 2) * size == value:
            return f"{value / size:g} {word}"
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"


def _quantity(m: re.Match) -> str:
    digits, mag, unit = m.group(1), m.group(2), m.group(3) or ""
    if not mag and not unit:
        return m.group(0)
    value = float(digits.replace(",", "")) * _MAG.get(mag or "", 1)
    number = _number(value) if mag else digits
    if unit == "年":  # "2009年" is a year, "3年" a duration
        return number if 1000 <= value <= 2200 else f"{number} years"
    word = _UNITS.get(unit, "")
    return f"{number} {word}" if word else number


def _after_surname(m: re.Match) -> bool:
    """The run is glued to a capitalised one-syllable word before it ("Li继东"): a given name."""
    from rag.text.pinyin import syllables

    before = re.search(r"\b([A-Z][a-z]{0,5})$", m.string[: m.start()])
    return bool(before) and before.group(1).lower() in syllables() and len(m.group(0)) <= 2


def _romanise(run: str, given_name: bool = False) -> str:
    """'岳丹' → 'Yue Dan (岳丹)'; '大棚' → 'dapeng (大棚)'; a given name glued to its
    romanised surname ("Li继东") → 'Jidong (继东)'."""
    import jieba.posseg as pseg
    from pypinyin import lazy_pinyin

    if given_name:
        return f"{''.join(lazy_pinyin(run)).capitalize()} ({run})"
    words = [(w.word, w.flag) for w in pseg.cut(run)]
    is_name = any(f.startswith(_NAME_TAGS) for _, f in words)
    if is_name and len(run) <= 4:
        # a person's name: surname apart from the given name (刘恩福 → Liu Enfu)
        syl = lazy_pinyin(run)
        parts = [syl[0], "".join(syl[1:])] if len(run) in (2, 3) else ["".join(syl)]
    else:
        parts = ["".join(lazy_pinyin(w)) for w, _ in words]
    roman = " ".join(p.capitalize() if is_name else p for p in parts if p)
    return f"{roman} ({run})"


def _convert(text: str) -> str:
    text = _DOCUMENTS.sub(" the documents ", text)
    text = _QUANTITY.sub(_quantity, text)
    text = _CJK_RUN.sub(lambda m: f" {_romanise(m.group(0), given_name=_after_surname(m))} ", text)
    for zh, en in _PUNCT.items():
        text = text.replace(zh, en)
    return text


def englishify(statement: str) -> str:
    """An English statement with the Chinese the model copied into it put into English.

    >>> englishify("According to the existing资料, the per-capita income in 2009 was 9450元")
    'According to the documents, the per-capita income in 2009 was 9450 yuan'
    >>> englishify("The company invested 800万元 and reclaimed 3.2万亩")
    'The company invested 8 million yuan and reclaimed 32,000 mu'
    >>> englishify("The teacher who introduced the work is岳丹")
    'The teacher who introduced the work is Yue Dan (岳丹)'
    >>> englishify("According to the资料, the director is Li继东")
    'According to the documents, the director is Li Jidong (继东)'
    >>> englishify("It set up a company to develop大棚 vegetables")
    'It set up a company to develop dapeng (大棚) vegetables'
    >>> englishify("It was set up in 2005 (安达市委于2005年成立)")   # a gloss: kept
    'It was set up in 2005 (安达市委于2005年成立)'
    >>> englishify("宝泰隆公司组建于2003年")   # mostly Chinese: left alone
    '宝泰隆公司组建于2003年'
    """
    latin = sum(len(w) for w in _LATIN_WORD.findall(statement))
    cjk = sum(len(r) for r in _CJK_RUN.findall(statement))
    if latin < 2 * cjk or not (cjk or any(c in statement for c in _PUNCT)):
        return statement
    parts, pos = [], 0
    for m in _GLOSS.finditer(statement):
        parts += [_convert(statement[pos : m.start()]), m.group(0)]
        pos = m.end()
    text = "".join(parts) + _convert(statement[pos:])
    text = re.sub(r"\s+([,.;:!?)])", r"\1", text)
    text = re.sub(r"\(\s+", "(", text)
    return re.sub(r"\s{2,}", " ", text).strip()
