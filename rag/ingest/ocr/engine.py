"""The OCR engine: one page image → recognised lines with boxes, upright, in the page's frame.

RapidOCR (`rapidocr-onnxruntime` 1.4.4: PP-OCRv4 detection and recognition plus the mobile
angle classifier, all ONNX files inside the wheel — nothing is downloaded) on the project's ONNX
Runtime. It was chosen over Tesseract by measured character accuracy on the same rendered pages
(benchmarks/ocr.py → benchmarks/results/ocr.md). The engine is loaded once per process.

Orientation: a page scanned sideways (90°/270°) shows as tall text boxes; a page upside down as
lines the angle classifier calls "180". The classifier is asked about the first boxes' crops
(cheap: a tiny model) and the page is turned upright and recognised again, so boxes are always in
the upright page's frame (`PageOCR.rotation` says by how much the stored source must be turned
to match them). Vertical writing also shows as tall boxes: it is read both ways — the page turned
(its columns, right to left, become lines top to bottom, in order; full-width commas then read as
’) and each column cut into character cells laid side by side (`_vertical_crop`, columns ordered
right to left by rag.ingest.ocr.layout) — and the reading with more confident text is kept (on the test
fixture, the turned page; tests/test_ocr.py checks the order is kept). Skew of a few degrees needs
nothing: the detector returns rotated quadrilaterals and the recogniser reads the rectified crop.

Deliberate compromise: the cell cut for vertical text assumes square, evenly spaced characters
(true of printed CJK; ruby or mixed Latin columns read poorly, but are not scrambled).
"""

from __future__ import annotations

import functools
import logging
import threading

from rag.ingest.ocr.lines import OcrLine, PageOCR

log = logging.getLogger(__name__)

ENGINE_ID = "rapidocr-onnxruntime-1.4.4/ppocrv4/v4"  # part of the cache key: bump on any change here
TRADITIONAL_SHARE = 0.1  # a page this traditional is read again by Tesseract chi_tra when installed
_LOCK = threading.Lock()  # one page at a time: ONNX Runtime already uses every core


@functools.lru_cache(maxsize=1)
def get_engine():
    """The RapidOCR engine, loaded once per process (≈2 s)."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as e:  # pragma: no cover - a broken install
        from rag.errors import IngestError

        raise IngestError(f"OCR is not installed ({e}); run: pip install rapidocr-onnxruntime==1.4.4") from None
    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    return RapidOCR()


def _bgr(img):
    import numpy as np

    return np.ascontiguousarray(np.asarray(img.convert("RGB"))[:, :, ::-1])


def _raw(img) -> list[tuple[list[list[float]], str, float]]:
    res, _ = get_engine()(_bgr(img))
    return [(q, t, float(s)) for q, t, s in (res or [])]


def _size(q) -> tuple[float, float]:
    import numpy as np

    p = np.asarray(q, dtype=np.float32)
    w = max(np.linalg.norm(p[0] - p[1]), np.linalg.norm(p[2] - p[3]))
    h = max(np.linalg.norm(p[0] - p[3]), np.linalg.norm(p[1] - p[2]))
    return float(w), float(h)


def _tall(raw) -> list:
    return [r for r in raw if (lambda wh: wh[1] >= 1.5 * wh[0] and wh[1] >= 40)(_size(r[0]))]


def _flip_votes(img, raw, limit: int = 12) -> tuple[int, int]:
    """(upright, upside-down) votes of the angle classifier over up to `limit` of the page's
    boxes, cropped as the recogniser sees them (tall crops turned 90° counter-clockwise)."""
    import numpy as np

    eng = get_engine()
    quads = [np.asarray(q, dtype=np.float32) for q, _, _ in sorted(raw, key=lambda r: -len(r[1]))[:limit]]
    if not quads:
        return 0, 0
    crops = eng.get_crop_img_list(_bgr(img), quads)
    _, cls_res, _ = eng.text_cls(crops)
    up = sum(1 for lab, sc in cls_res if lab == "0" and sc > 0.6)
    down = sum(1 for lab, sc in cls_res if lab == "180" and sc > 0.6)
    return up, down


def _weight(raw) -> float:
    """Confidence-weighted character count: how much readable text a reading found."""
    return sum(s * len(t) for _, t, s in raw)


def _vertical_crop(img, q):
    """A vertical column's crop cut into character cells laid side by side (one line)."""
    import numpy as np
    from PIL import Image

    x0, y0 = (int(min(p[i] for p in q)) for i in (0, 1))
    x1, y1 = (int(max(p[i] for p in q)) + 1 for i in (0, 1))
    col = img.crop((x0, y0, x1, y1)).convert("RGB")
    w, h = col.size
    n = max(1, round(h / max(w, 1)))
    cell = h / n
    strip = Image.new("RGB", (w * n, w), "white")
    for k in range(n):
        piece = col.crop((0, int(k * cell), w, int((k + 1) * cell))).resize((w, w))
        strip.paste(piece, (k * w, 0))
    return np.ascontiguousarray(np.asarray(strip)[:, :, ::-1])


def _read_vertical(img, raw) -> list[tuple[list[list[float]], str, float, bool]]:
    eng = get_engine()
    out = []
    for q, t, s in raw:
        w, h = _size(q)
        if h >= 1.5 * w:
            (t2, s2), = eng.text_rec([_vertical_crop(img, q)])[0]
            if s2 >= 0.5:
                out.append((q, t2, float(s2), True))
        else:
            out.append((q, t, s, False))
    return out


def _lines(raw4) -> list[OcrLine]:
    out = []
    for q, t, s, vert in raw4:
        t = t.strip()
        if not t:
            continue
        xs, ys = [p[0] for p in q], [p[1] for p in q]
        box = (int(min(xs)), int(min(ys)), int(round(max(xs))), int(round(max(ys))))
        out.append(OcrLine(t, box, s, vert, [[round(float(a), 1), round(float(b), 1)] for a, b in q]))
    return out


def recognize(img) -> PageOCR:
    """OCR one page image (PIL), turned upright first when it is sideways or upside down."""
    with _LOCK:
        raw = _raw(img)
        rotation = 0
        tall = _tall(raw)
        if raw and len(tall) >= 0.6 * len(raw):
            up, down = _flip_votes(img, tall)
            # the recogniser turns a tall crop 90° counter-clockwise: read upright, the page must
            # turn that way too; read upside down, the other way
            turn = 90 if up >= down else 270
            turned = img.rotate(turn, expand=True)
            raw2 = _raw(turned)
            vert = _read_vertical(img, raw)
            if _weight(raw2) >= 0.8 * _weight([(q, t, s) for q, t, s, _ in vert]):
                lines = _traditional(turned, _lines([(*r, False) for r in raw2]))
                return PageOCR(lines, turned.width, turned.height, turn)
            return PageOCR(_lines(vert), img.width, img.height, 0)
        if raw:
            up, down = _flip_votes(img, raw)
            if down > up and down >= 2:
                rotation = 180
                img = img.rotate(180)
                raw = _raw(img)
        lines = _lines([(*r, False) for r in raw])
        if raw and len(tall) < 0.6 * len(raw):
            lines = _traditional(img, lines)
        return PageOCR(lines, img.width, img.height, rotation)


def traditional_share(text: str) -> float:
    """Share of the CJK characters of `text` that are traditional-only (change under t2s).

    >>> round(traditional_share("本縣位於省境東北部"), 2), traditional_share("本县位于省境东北部")
    (0.33, 0.0)
    """
    from rag.text.norm import t2s

    cjk = [c for c in text if "\u3400" <= c <= "\u9fff"]
    if not cjk:
        return 0.0
    return sum(t2s(c) != c for c in cjk) / len(cjk)


def _traditional(img, lines: list[OcrLine]) -> list[OcrLine]:
    """A page read as mostly traditional script: read again with Tesseract chi_tra (rag.ingest.ocr.
    tesseract) and keep the reading that found more confident text."""
    from rag.ingest.ocr import tesseract

    text = "".join(ln.text for ln in lines)
    if traditional_share(text) < TRADITIONAL_SHARE or not tesseract.available("chi_tra"):
        return lines
    try:
        other = tesseract.read_lines(img, "chi_tra")
    except Exception as e:  # Tesseract is a second opinion: its failure keeps the first
        log.warning("tesseract failed (%s); keeping RapidOCR's reading", e)
        return lines
    other = _merge(lines, other)
    mine = sum(ln.score * len(ln.text) for ln in lines)
    theirs = sum(ln.score * len(ln.text) for ln in other)
    return other if theirs >= 0.9 * mine else lines


def merge_text(mine: str, theirs: str) -> str:
    """One line read by both engines: Tesseract's characters where the two differ, plus the
    characters only RapidOCR saw (Tesseract drops a few low-confidence ones, RapidOCR the
    traditional characters its dictionary lacks).

    Punctuation is RapidOCR's (it reads full-width marks reliably; Tesseract turns specks into
    commas).

    >>> merge_text("本位於省境，總面積", "本縣位於省境,總面")
    '本縣位於省境，總面積'
    >>> merge_text("二、發展成就。", "二，'發展成就，。")
    '二、發展成就。'
    """
    import difflib

    def punct(x: str) -> bool:
        return not any(c.isalnum() for c in x)

    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, mine, theirs, autojunk=False).get_opcodes():
        a, b = mine[i1:i2], theirs[j1:j2]
        if op == "delete" or (op == "replace" and punct(a) and punct(b)):
            out.append(a)
        elif op == "insert" and punct(b):
            continue
        else:
            out.append(b)
    return "".join(out)


def _merge(mine: list[OcrLine], theirs: list[OcrLine]) -> list[OcrLine]:
    """Pair each RapidOCR line with the Tesseract lines whose centre lies in it, merge their
    texts (`merge_text`) under RapidOCR's box; unpaired lines of either engine are kept."""
    out: list[OcrLine] = []
    used: set[int] = set()
    for r in mine:
        near = [i for i, t in enumerate(theirs) if i not in used and _overlap(t.box, r.box) > 0.4]
        if not near:
            out.append(r)
            continue
        used.update(near)
        text = "".join(theirs[i].text for i in sorted(near, key=lambda i: theirs[i].box[0]))
        out.append(OcrLine(merge_text(r.text, text), r.box, r.score, False, r.quad))
    out += [t for i, t in enumerate(theirs) if i not in used]
    return out


def _overlap(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Share of box `a`'s area covered by box `b`.

    >>> _overlap((0, 0, 10, 10), (5, 0, 20, 10))
    0.5
    """
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    area = max(1, (a[2] - a[0]) * (a[3] - a[1]))
    return max(0, w) * max(0, h) / area
