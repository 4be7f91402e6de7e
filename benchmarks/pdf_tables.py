"""What PDF table detection costs: `rag.ingest.formats.read_pdf` (plain text + layout-mode text on pages
that look tabular, rag.ingest.pdf_tables) beside the same reader with detection switched off (plain text
only, the behaviour before tables), on PDFs rendered here with the CJK font: prose only, prose
with numbers, and prose with a 40-row table per page. Also counts the pages that paid for the
layout pass and the tables found.

    nice python3 benchmarks/pdf_tables.py --pages 20 --out benchmarks/results/pdf_tables.md
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rag.ingest.formats as formats  # noqa: E402
from rag.ingest import pdf_tables  # noqa: E402

FONT = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
PROSE = ("县委认真贯彻落实上级部署，坚持以经济建设为中心，统筹推进各项工作，全县经济社会保持平稳健康发展，"
         "人民群众的获得感、幸福感不断增强。")
NUMBERS = "全年地区生产总值达到128.6亿元，比上年增长8.5%，其中第一产业增加值21.3亿元，增长4.2%。"


def render(path: Path, pages: int, kind: str) -> None:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Table, TableStyle

    pdfmetrics.registerFont(TTFont("WQY", FONT, subfontIndex=0))
    st = ParagraphStyle("zh", fontName="WQY", fontSize=11, leading=16)
    story = []
    for p in range(pages):
        if kind == "table":
            story.append(Paragraph(PROSE, st))
            rows = [["年份", "人均收入（元）", "增长率"]] + [[str(y), str(5000 + 731 * (y - 2000)), f"{y % 7 + 3}.{y % 10}%"] for y in range(2000, 2040)]
            t = Table(rows, colWidths=[80, 120, 80])
            t.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), "WQY"), ("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
            story.append(t)
        else:
            for _ in range(12):
                story.append(Paragraph(NUMBERS if kind == "numbers" else PROSE, st))
        story.append(PageBreak())
    SimpleDocTemplate(str(path), pagesize=A4).build(story)


def timed(data: bytes, detect: bool, repeats: int) -> tuple[float, dict]:
    saved = formats.page_items
    if not detect:
        formats.page_items = lambda page, plain: plain.strip("\n").split("\n")
    try:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            _, _, meta = formats.read_pdf(data, "bench.pdf")
            best = min(best, time.perf_counter() - t0)
    finally:
        formats.page_items = saved
    return best, meta


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/pdf_tables.md")
    a = ap.parse_args()
    from pypdf import PdfReader

    rows = []
    with tempfile.TemporaryDirectory() as d:
        for kind in ("prose", "numbers", "table"):
            path = Path(d) / f"{kind}.pdf"
            render(path, a.pages, kind)
            data = path.read_bytes()
            reader = PdfReader(str(path))
            n = len(reader.pages)
            layout_pages = sum(pdf_tables._worth_layout((p.extract_text() or "").split("\n")) for p in reader.pages)
            timed(data, True, 1)  # warm-up: imports, font caches
            off = on = float("inf")
            for _ in range(a.repeats):  # interleaved, so load changes hit both sides alike
                off = min(off, timed(data, False, 1)[0])
                t, meta = timed(data, True, 1)
                on = min(on, t)
            rows.append((kind, n, layout_pages, len(meta.get("tables", [])), off / n, on / n, on / off))
    load = os.getloadavg()
    lines = [
        "# PDF table detection cost (rag.ingest.pdf_tables via rag.ingest.formats.read_pdf)",
        "",
        f"Command: `nice python3 benchmarks/pdf_tables.py --pages {a.pages} --repeats {a.repeats}`; best of {a.repeats}, the two readers interleaved.",
        f"Machine: 2 cores, shared with other jobs (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}); "
        "compare the ratio, measured side by side in one run.",
        "",
        "| PDF | pages | pages given the layout pass | tables found | s/page plain only | s/page with detection | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kind, n, lp, nt, off, on, r in rows:
        lines.append(f"| {kind} | {n} | {lp} | {nt} | {off:.4f} | {on:.4f} | {r:.2f}× |")
    lines += ["", "Pages given no layout pass do the plain extraction plus a regex scan of its lines, so their ratio",
              "is 1× up to load noise; pages that look tabular pay a second (layout-mode) pypdf extraction."]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
