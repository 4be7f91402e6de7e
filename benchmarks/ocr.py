"""OCR engines side by side on the same rendered pages: seconds per page and character error rate.

Pages are drawn by tests/_ocr_pages.py (WenQuanYi Zen Hei, A4 at 150 dpi: simplified and
traditional, one and two columns, rotated 90°, skewed 2.5°, noisy), saved as an image-only PDF
and rendered back with the production renderer (rag.ingest.ocr.pages.pdf_pages). Each engine reads every
page; its lines go through the production layout (rag.ingest.ocr.document._assemble) so CER measures
what would be indexed. Engines:

- `rapidocr`: RapidOCR alone (rag.ingest.ocr.engine with the Tesseract second reading switched off);
- `tesseract`: Tesseract alone on the upright page (chi_sim for simplified pages, chi_tra for
  traditional ones — told the script, which the pipeline is not; rotated pages are given upright);
- `pipeline`: what `rag index` runs (rag.ingest.ocr.engine.recognize: RapidOCR, orientation, Tesseract
  chi_tra merged in on traditional pages).

Then the end-to-end check: a 20-page image-only PDF indexed by `python3 -m rag index` in a fresh
RAG_HOME (empty OCR cache; the configured embedding model), wall time reported.

    nice python3 benchmarks/ocr.py --out benchmarks/results/ocr.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import _ocr_pages as F  # noqa: E402


def fixtures() -> list[tuple[str, str, object]]:
    """(name, script, Page). A header on a single page is not a *running* header (it repeats on no
    other page), so it stays in the text and in that page's truth; the page number is dropped."""
    return [
        ("simplified, 1 column", "sim", F.draw_page(F.SIMPLIFIED)),
        ("traditional, 1 column", "tra", F.draw_page(F.TRADITIONAL)),
        ("simplified, 2 columns", "sim", F.draw_page(F.SIMPLIFIED + F.SIMPLIFIED_MORE, columns=2, size=28)),
        ("simplified, rotated 90°", "sim", F.rotate(F.draw_page(F.SIMPLIFIED), 90)),
        ("traditional, rotated 270°", "tra", F.rotate(F.draw_page(F.TRADITIONAL), 270)),
        ("simplified, skewed 2.5°", "sim", F.skew(F.draw_page(F.SIMPLIFIED), 2.5)),
        ("traditional, noisy", "tra", F.noise(F.draw_page(F.TRADITIONAL))),
        ("simplified, header + page number", "sim", _with_header(F.draw_page(F.SIMPLIFIED, header="XX县人民政府文件", page_no=1))),
    ]


def _with_header(page):
    page.body = "XX县人民政府文件" + page.body
    return page


def _rendered(page) -> object:
    from rag.ingest.ocr.pages import pdf_pages

    with tempfile.TemporaryDirectory() as d:
        data = F.save_pdf([page], Path(d) / "p.pdf").read_bytes()
    return next(pdf_pages(data, "bench", [0]))[1]


def _text(page_ocr) -> str:
    from rag.ingest.ocr.document import _assemble

    return _assemble([(1, page_ocr)], "bench")[0]


def run_engine(engine: str, img, script: str, upright) -> object:
    from rag.ingest.ocr import engine as eng
    from rag.ingest.ocr.lines import PageOCR

    if engine == "pipeline":
        return eng.recognize(img)
    if engine == "rapidocr":
        saved = eng.TRADITIONAL_SHARE
        eng.TRADITIONAL_SHARE = 2.0  # never: RapidOCR alone
        try:
            return eng.recognize(img)
        finally:
            eng.TRADITIONAL_SHARE = saved
    from rag.ingest.ocr.tesseract import read_lines

    return PageOCR(read_lines(upright, "chi_tra" if script == "tra" else "chi_sim"), upright.width, upright.height)


def index_20_pages(tmp: Path, models_dir: str) -> tuple[float, str]:
    pages = [F.draw_page(F.SIMPLIFIED if i % 2 else F.TRADITIONAL, header="XX县人民政府文件", page_no=i) for i in range(1, 21)]
    pdf = F.save_pdf(pages, tmp / "scan20.pdf")
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAG_HOME=str(tmp / "home"), RAG_MODELS_DIR=models_dir, HF_HUB_OFFLINE="1")
    t = time.time()
    r = subprocess.run([sys.executable, "-m", "rag", "index", str(pdf), "--kb", "scan20", "--no-progress"],
                       capture_output=True, text=True, env=env, timeout=3600)
    took = time.time() - t
    return took, (r.stdout + r.stderr).strip().splitlines()[-1] if r.returncode == 0 else f"FAILED: {r.stderr[-300:]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/ocr.md"))
    ap.add_argument("--skip-index", action="store_true")
    args = ap.parse_args()
    from rag.ingest.ocr import tesseract
    from rag.ingest.ocr.engine import get_engine

    from rag.config import load_config

    models_dir = load_config().paths.models_dir  # the real models, resolved before RAG_HOME moves
    os.environ["RAG_HOME"] = tempfile.mkdtemp(prefix="ocr-bench-")  # nothing cached
    load0 = os.getloadavg()
    t = time.time()
    get_engine()
    load_s = time.time() - t
    engines = ["rapidocr", "pipeline"] + (["tesseract"] if tesseract.available("chi_tra") and tesseract.available("chi_sim") else [])
    rows = []
    for name, script, page in fixtures():
        img = _rendered(page)
        upright = _rendered(F.draw_page(F.SIMPLIFIED if script == "sim" else F.TRADITIONAL)) if "rotated" in name else img
        cells = []
        for e in engines:
            t = time.time()
            res = run_engine(e, img, script, upright)
            took = time.time() - t
            cells.append((took, F.cer(_text(res), page.body)))
        rows.append((name, cells))
        print(name, [(round(a, 1), round(b, 3)) for a, b in cells], flush=True)
    idx = None if args.skip_index else index_20_pages(Path(tempfile.mkdtemp(prefix="ocr-bench20-")), models_dir)
    load1 = os.getloadavg()
    out = ["# OCR engines on rendered pages", "",
           f"Command: `nice python3 benchmarks/ocr.py --out {Path(args.out).relative_to(ROOT) if Path(args.out).is_absolute() else args.out}`  ",
           f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; 2 CPU cores **shared with other jobs** "
           f"(load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end): seconds are inflated and noisy; "
           "compare engines within one run, not against other runs.  ",
           f"RapidOCR engine load: {load_s:.1f} s (once per process). Pages: A4 drawn at 150 dpi with WenQuanYi Zen Hei, "
           "saved as an image-only PDF, rendered back at 150 dpi (rag.ingest.ocr.pages).", "",
           "CER = Levenshtein distance / drawn characters, whitespace ignored (rapidfuzz), after the production layout "
           "(page numbers dropped, so they are not in the truth either; a single page's header is kept and is in its truth).", "",
           "| page | " + " | ".join(f"{e} s | {e} CER" for e in engines) + " |",
           "| --- | " + " | ".join("---: | ---:" for _ in engines) + " |"]
    for name, cells in rows:
        out.append(f"| {name} | " + " | ".join(f"{a:.1f} | {b * 100:.1f} %" for a, b in cells) + " |")
    for k, e in enumerate(engines):
        sec = sum(c[k][0] for _, c in rows) / len(rows)
        cer = sum(c[k][1] for _, c in rows) / len(rows)
        out.append(f"| **mean {e}** | " + " | ".join((f"**{sec:.1f}** | **{cer * 100:.1f} %**" if j == k else " | ") for j in range(len(engines))) + " |")
    out += ["", "`tesseract` is told the script and gets rotated pages upright (an advantage the others do not have); "
            "`pipeline` is what `rag index` runs: RapidOCR for orientation and reading, Tesseract chi_tra merged in "
            "on pages that read as traditional script (rag/ingest/ocr/engine.py)."]
    if idx is not None:
        out += ["", "## 20-page scan, end to end", "",
                f"`python3 -m rag index scan20.pdf` (20 image-only A4 pages, 150 dpi, simplified and traditional alternating, "
                f"header and page numbers; empty OCR cache; configured embedding model): **{idx[0]:.0f} s** wall "
                f"({idx[0] / 20:.1f} s per page) — target ≤ 120 s on 2 cores. Last line: `{idx[1]}`"]
    Path(args.out).write_text("\n".join(out) + "\n", encoding="utf-8")
    print("\n".join(out))


if __name__ == "__main__":
    main()
