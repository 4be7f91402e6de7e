"""Cleaning (first increment): trims lines, drops blank lines, keeps an offset map."""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass, field


@dataclass
class Cleaned:
    clean: str
    offsets: array
    title: str = ""
    metadata: dict = field(default_factory=dict)


_DATE_RE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})")


def parse_date(s: str) -> str:
    m = _DATE_RE.search(s)
    if not m:
        return ""
    y, mo, d = (int(x) for x in m.groups())
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return ""
    return f"{y:04d}-{mo:02d}-{d:02d}"


def clean_text(text: str, fmt: str = "text", title_hint: str = "") -> Cleaned:
    parts: list[str] = []
    offs = array("i")
    pos = 0
    for line in text.split("\n"):
        s = len(line) - len(line.lstrip())
        e = len(line.rstrip())
        if e > s:
            if parts:
                parts.append("\n")
                offs.append(pos - 1)
            parts.append(line[s:e])
            offs.extend(range(pos + s, pos + e))
        pos += len(line) + 1
    return Cleaned("".join(parts), offs, title_hint, {})
