"""Chinese text normalisation, in one place: used by the index, retrieval, citations and metrics.

- Script: OpenCC (`opencc==1.4.2`, the official binding) converts traditional ↔ simplified.
  Matching (BM25 tokens, the text the embedder sees, citation support, metrics) happens on a
  simplified, NFKC-folded form; what is stored, shown and cited stays in the original script.
- Width: NFKC folds full-width ASCII (ＡＢＣ１２３) to half-width. NFKC also maps ideographic
  compatibility characters to their unified forms, which is what matching wants.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")


@lru_cache(maxsize=None)
def _converter(config: str):
    import opencc

    try:
        return opencc.OpenCC(f"{config}.json")
    except Exception:  # some builds take the bare name
        return opencc.OpenCC(config)


def t2s(text: str) -> str:
    """Traditional → simplified. `t2s("東北網") == "东北网"`."""
    return _converter("t2s").convert(text) if text else text


def s2t(text: str) -> str:
    """Simplified → traditional. `s2t("东北网") == "東北網"`."""
    # s2tw: the conventional traditional glyphs (為, 這裡, 群眾) rather than OpenCC's historical
    # standard (爲, 這裏, 羣衆), which readers in Taiwan and Hong Kong find odd
    return _converter("s2tw").convert(text) if text else text


def fold_width(text: str) -> str:
    """NFKC: full-width ASCII and compatibility forms folded. `fold_width("ＡＩ１２") == "AI12"`."""
    return unicodedata.normalize("NFKC", text)


def normalize(text: str) -> str:
    """The matching form: simplified script, NFKC-folded, lower-cased.

    >>> normalize("東北網 ＡＩ")
    '东北网 ai'
    """
    return t2s(fold_width(text)).lower()


def cjk_count(text: str) -> int:
    return len(_CJK.findall(text))


def detect_script(text: str) -> str:
    """'traditional', 'simplified' or 'other' (no Chinese characters, e.g. an English question).

    Decided by which conversion changes more characters: traditional text changes under t2s,
    simplified text under s2t. Ties (text valid in both scripts) count as simplified.

    >>> detect_script("這個問題"), detect_script("这个问题"), detect_script("What is it?")
    ('traditional', 'simplified', 'other')
    """
    if cjk_count(text) == 0:
        return "other"
    to_s = sum(a != b for a, b in zip(text, t2s(text)))
    to_t = sum(a != b for a, b in zip(text, s2t(text)))
    return "traditional" if to_s > to_t else "simplified"


def question_language(text: str) -> str:
    """'zh-Hant', 'zh-Hans' or 'en' (anything without Chinese is answered in English)."""
    s = detect_script(text)
    return {"traditional": "zh-Hant", "simplified": "zh-Hans"}.get(s, "en")


def to_script(text: str, script: str) -> str:
    """Convert `text` into `script` ('traditional' | 'simplified'); anything else leaves it as is."""
    if script == "traditional":
        return s2t(text)
    if script == "simplified":
        return t2s(text)
    return text


def strip_punct_space(text: str) -> str:
    """Remove punctuation, symbols and whitespace (Unicode categories P*, S*, Z* and controls).

    >>> strip_punct_space("「五個好」， 即：A-1!")
    '五個好即A1'
    """
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PSZC")


def normalize_answer(text: str) -> str:
    """The metric form used by EM/F1 (as the CMRC 2018 scorer, plus script folding):
    simplified, half-width, lower-case, no punctuation or whitespace."""
    return strip_punct_space(normalize(text))
