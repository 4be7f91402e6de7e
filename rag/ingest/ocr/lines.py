"""What OCR returns for a page: recognised lines with boxes (shared by the engines, the layout, the
cache and the document builder)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class OcrLine:
    """One recognised line: text, axis-aligned box (x0, y0, x1, y1) in upright-page pixels,
    confidence, and whether it was read as a vertical column."""

    text: str
    box: tuple[int, int, int, int]
    score: float
    vertical: bool = False
    quad: list[list[float]] = field(default_factory=list)  # the detector's 4 corners (skew)


@dataclass
class PageOCR:
    """The lines of one page image; `width`/`height` of the upright image, `rotation` (0, 90,
    180, 270: degrees counter-clockwise the source image was turned, PIL's `rotate` sense)."""

    lines: list[OcrLine]
    width: int
    height: int
    rotation: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"w": self.width, "h": self.height, "rot": self.rotation,
                "lines": [[ln.text, list(ln.box), round(ln.score, 4), int(ln.vertical), ln.quad] for ln in self.lines]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "PageOCR":
        lines = [OcrLine(t, tuple(int(v) for v in b), float(s), bool(v), q) for t, b, s, v, q in d["lines"]]
        return cls(lines, int(d["w"]), int(d["h"]), int(d.get("rot", 0)))
