"""Dates and the date/source line at the head of a scraped page (`2010-11-26 16:40:32 來源:東北網
作者:`): the first plausible date of a string (`parse_date`) and the metadata of a line that is
only a date and `label: value` pairs (`parse_dateline`: date, datetime, source_name, author).

Split out of rag/ingest/clean.py (which re-exports both and moves such a line into the
document's metadata). Compromise: a line is a date/source line only when, without the date and
the pairs, at most 6 characters remain; a sentence that mentions a date and a "时间：" stays text.
"""

from __future__ import annotations

import re

_DATE_RE = re.compile(
    r"(?<!\d)(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[\sT]*(\d{1,2}):(\d{2})(?::(\d{2}))?)?"
)
_FIELD_RE = re.compile(
    r"(来源|來源|稿源|出处|出處|作者|记者|記者|时间|時間|发布|發布|發佈|发表|發表|日期|浏览|瀏覽|点击|點擊|阅读|閱讀|编辑|編輯|字号|字號)"
)
_FIELD_PAIR = re.compile(r"\S{0,4}?" + _FIELD_RE.pattern + r"\S{0,3}?\s*[:：]\s*[^\s|｜，,。；;]*")
_SOURCE_RE = re.compile(r"(?:来源|來源|稿源|出处|出處)\s*[:：]\s*([^\s|｜]*)")
_AUTHOR_RE = re.compile(r"(?:作者|记者|記者)\s*[:：]\s*([^\s|｜]*)")


def parse_date(s: str) -> str:
    """First plausible date in `s` as ISO `YYYY-MM-DD` ('' if none).

    >>> parse_date("2010-11-26 16:40:32 來源:東北網"), parse_date("2010年6月8日"), parse_date("x")
    ('2010-11-26', '2010-06-08', '')
    """
    for m in _DATE_RE.finditer(s):
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if 1900 <= y <= 2100 and 1 <= mo <= 12 and 1 <= d <= 31:
            return f"{y:04d}-{mo:02d}-{d:02d}"
    return ""


def parse_dateline(line: str) -> dict | None:
    """Metadata from a date/source line, or None if `line` is not one.

    >>> parse_dateline("2012-07-15 10:29:18 来源:黑龙江日报  作者:常春晖")["author"]
    '常春晖'
    """
    if len(line) > 120:
        return None
    m = _DATE_RE.search(line)
    fields = _FIELD_RE.findall(line)
    if not m and len(set(fields)) < 2:
        return None
    # what is left without the date and the "label: value" pairs must be (almost) nothing,
    # else this is a sentence that happens to mention a date ("2010年6月28日，…时间安排如下")
    rest = line[: m.start()] + " " + line[m.end() :] if m else line
    rest = _FIELD_PAIR.sub(" ", rest)
    if len(re.sub(r"[\s|｜/·•,，;；\-—_()（）\[\]【】]", "", rest)) > 6:
        return None
    meta: dict = {}
    if m:
        d = parse_date(m.group(0))
        if not d:
            return None
        meta["date"] = d
        if m.group(4):
            meta["datetime"] = f"{d}T{int(m.group(4)):02d}:{m.group(5)}:{m.group(6) or '00'}"
    ms = _SOURCE_RE.search(line)
    if ms and ms.group(1) and not _FIELD_RE.match(ms.group(1)):
        meta["source_name"] = ms.group(1)
    ma = _AUTHOR_RE.search(line)
    if ma and ma.group(1) and not _FIELD_RE.match(ma.group(1)):
        meta["author"] = ma.group(1)
    return meta
