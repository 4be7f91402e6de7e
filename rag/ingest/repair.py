"""In-line repairs of one line that keep its offset map (`repair_line`): zero-width and
private-use characters, Markdown image residue, OCR quotes (`‚…‛` → `“…”`, runs of `„` → `……`)
and characters (`OCR_CHAR_FIXES`), page numbers glued to a line, a document-sharing site's blurb
sentence (`SITE_BLURB`), whitespace runs; the line comes back trimmed.

Split out of rag/ingest/clean.py (which re-exports `repair_line` and `OCR_CHAR_FIXES`; its
docstring lists every rule of cleaning and how the offset map is kept). General rules only: none
names a particular site or file.
"""

from __future__ import annotations

import re
from array import array

from rag.ingest.boilerplate import MD_IMAGE, WS
from rag.ingest.linejoin import HAS_CJK

#: Characters OCR engines substitute for common ones; the wrong ones are (practically) unused in
#: modern Chinese, so replacing them everywhere is safe. Extend with care: only characters that
#: are never right in running text belong here.
OCR_CHAR_FIXES = {
    "臵": "置",  # 设臵/位臵/配臵 → 设置/位置/配置: 臵 is an obsolete variant OCR picks for 置
    "\u2002": " ",
    "\u2003": " ",
}
_OCR_CHARS = re.compile("[" + "".join(OCR_CHAR_FIXES) + "]")
# zero-width characters, private-use glyphs of symbol fonts, stray control characters
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad\x00-\x08\x0e-\x1f\x7f]|[\ue000-\uf8ff]")
_LOW9_QUOTES = re.compile("[\u201a\u201b]")  # ‚ ‛ used by OCR for “ ”
_LOW9_RUN = re.compile("\u201e(?:[ \u3000]*\u201e)+[ \u3000]*")  # „ „ „„ : an OCR'd ellipsis
_WS_RUN = re.compile(f"[{WS}\r]{{2,}}|[\t\r\u3000\xa0\u2002\u2003\u2009\u200a\u202f\u205f\x0b\x0c]")
# a page footer ("-1-") glued to the last line of a page, or a header glued to the next
_GLUED_PAGE_NUM = re.compile(r"(?<=[\u3400-\u9fff，。、”])\s*[-—–－]\s*\d{1,4}\s*[-—–－]\s*$|^\s*[-—–－]\s*\d{1,4}\s*[-—–－]\s*(?=[\u3400-\u9fff])")
# a document-sharing site's blurb inside the text: "本站精心为大家整理了…，希望对你有帮助。"
SITE_BLURB = re.compile(r"[^。！？!?\n]*本[站网][^。！？!?\n]{0,30}(?:整理|收集|精选|推荐|提供|收录)[^。！？!?\n]*[。！？!?]")


def _sub(s: str, offs: array, pattern: re.Pattern, repl) -> tuple[str, array]:
    """re.sub that keeps `offs` aligned: same-length replacements map character for character,
    other replacements map every new character to the first replaced one."""
    out: list[str] = []
    new = array("i")
    last = 0
    for m in pattern.finditer(s):
        a, b = m.span()
        r = repl(m) if callable(repl) else repl
        out.append(s[last:a])
        new.extend(offs[last:a])
        out.append(r)
        if len(r) == b - a:
            new.extend(offs[a:b])
        elif r:
            anchor = offs[a] if a < len(offs) else (offs[-1] if len(offs) else 0)
            new.extend([anchor] * len(r))
        last = b
    if last == 0 and not out:
        return s, offs
    out.append(s[last:])
    new.extend(offs[last:])
    return "".join(out), new


def repair_line(s: str, offs: array) -> tuple[str, array]:
    r"""In-line repairs: zero-width/private-use characters, image residue, OCR quotes and
    characters, whitespace runs. Returns the trimmed line and its offsets.

    >>> s, offs = repair_line("  设臵\u3000\u3000中心\u201a好\u201b ", array("i", range(12)))
    >>> s, list(offs)
    ('设置 中心“好”', [2, 3, 4, 6, 7, 8, 9, 10])
    """
    if _ZERO_WIDTH.search(s):
        s, offs = _sub(s, offs, _ZERO_WIDTH, "")
    if "![" in s:
        s, offs = _sub(s, offs, MD_IMAGE, "")
    if "\u201e" in s and HAS_CJK.search(s):
        s, offs = _sub(s, offs, _LOW9_RUN, "……")
    if ("\u201a" in s or "\u201b" in s) and HAS_CJK.search(s):
        s, offs = _sub(s, offs, _LOW9_QUOTES, lambda m: "“" if m.group(0) == "\u201a" else "”")
    if _OCR_CHARS.search(s):
        s, offs = _sub(s, offs, _OCR_CHARS, lambda m: OCR_CHAR_FIXES[m.group(0)])
    if "-" in s or "—" in s:
        s, offs = _sub(s, offs, _GLUED_PAGE_NUM, "")
    if "本站" in s or "本网" in s:
        s, offs = _sub(s, offs, SITE_BLURB, "")
    if _WS_RUN.search(s):
        s, offs = _sub(s, offs, _WS_RUN, " ")
    a, b = 0, len(s)
    while a < b and s[a] == " ":
        a += 1
    while b > a and s[b - 1] == " ":
        b -= 1
    if a or b != len(s):
        s, offs = s[a:b], offs[a:b]
    return s, offs
