"""Tesseract (Debian `tesseract-ocr` + `tesseract-ocr-chi-tra`/`-chi-sim`) as a second reader.

Measured on the same rendered pages (benchmarks/results/ocr.md), RapidOCR's PP-OCRv4 reads
simplified Chinese best but drops or simplifies traditional characters its dictionary lacks (積
糧 況 轄 are not in it); Tesseract's chi_tra model reads those pages with a fraction of the errors.
So rag.ingest.ocr.engine lets RapidOCR find the orientation and read the page, and when the text it read
is mostly traditional script, reads the upright page again with Tesseract chi_tra and keeps
whichever found more confident text.

Tesseract is optional: without the binary or the language data `available()` is False and
RapidOCR's reading stands. It runs as a subprocess (PNG on stdin, TSV on stdout, a time limit);
words are grouped into lines by Tesseract's (block, paragraph, line) numbers.
"""

from __future__ import annotations

import functools
import io
import logging
import re
import shutil
import subprocess

log = logging.getLogger(__name__)
TIMEOUT = 120  # seconds per page


@functools.lru_cache(maxsize=4)
def available(lang: str = "chi_tra") -> bool:
    exe = shutil.which("tesseract")
    if not exe:
        return False
    try:
        out = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return lang in out.split()


_FULL = {",": "，", ":": "：", ";": "；", "?": "？", "!": "！", "(": "（", ")": "）"}
_HALF_AFTER_CJK = re.compile(r"(?<=[\u3400-\u9fff，。、])[,:;?!()]|[,:;?!()](?=[\u3400-\u9fff])")
MIN_CONF = 40  # words Tesseract is less sure of are specks and stains, not text


def _join(words: list[str]) -> str:
    """Words of one line: no space next to a CJK character, one between Latin words; ASCII
    punctuation next to CJK (Tesseract's habit) becomes the full-width mark the page shows.

    >>> _join(["本縣", "位於,", "共", "GDP", "growth", "。"])
    '本縣位於，共GDP growth。'
    """
    out = ""
    for w in words:
        if out and re.match(r"[A-Za-z0-9]", w) and re.search(r"[A-Za-z0-9.,;:]$", out):
            out += " "
        out += w
    return _HALF_AFTER_CJK.sub(lambda m: _FULL[m.group(0)], out)


def read_lines(img, lang: str = "chi_tra") -> list:
    """Tesseract's lines of an upright page image as `OcrLine`s (confidence 0–1)."""
    from rag.ingest.ocr.lines import OcrLine

    buf = io.BytesIO()
    img.save(buf, "PNG")
    proc = subprocess.run(
        [shutil.which("tesseract") or "tesseract", "stdin", "stdout", "-l", lang, "--psm", "3", "tsv"],
        input=buf.getvalue(), capture_output=True, timeout=TIMEOUT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"tesseract failed: {proc.stderr.decode('utf-8', 'replace').strip()[:200]}")
    groups: dict[tuple, list] = {}
    for row in proc.stdout.decode("utf-8", "replace").splitlines()[1:]:
        f = row.split("\t")
        if len(f) < 12 or f[0] != "5" or not f[11].strip() or float(f[10]) < MIN_CONF:
            continue
        x, y, w, h, conf = int(f[6]), int(f[7]), int(f[8]), int(f[9]), float(f[10])
        groups.setdefault((f[2], f[3], f[4]), []).append((x, y, x + w, y + h, conf, f[11].strip()))
    lines = []
    for words in groups.values():
        words.sort()
        box = (min(w[0] for w in words), min(w[1] for w in words), max(w[2] for w in words), max(w[3] for w in words))
        score = sum(max(0.0, w[4]) for w in words) / len(words) / 100
        quad = [[box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]]]
        lines.append(OcrLine(_join([w[5] for w in words]), box, score, False, quad))
    return lines
