"""OCR of scanned pages (rag.ingest.ocr): pages drawn here with a CJK font (tests/_ocr_pages.py), saved as
image-only PDF / PNG / TIFF, read by the real engine; character error rate asserted per fixture
(≤ 2 % clean, ≤ 5 % noisy or skewed), headers and page numbers gone, sections kept, and a
question about a drawn sentence answered with a citation naming the right page and box."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _ocr_pages as F  # noqa: E402

from rag.chunk.sections import chunk_document  # noqa: E402
from rag.ingest.load import load_file  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))  # the OCR cache lives there


def _truth(pages):
    return "".join(p.body for p in pages)


def test_one_column_simplified_pdf(tmp_path):
    pages = [F.draw_page(F.SIMPLIFIED)]
    doc = load_file(F.save_pdf(pages, tmp_path / "scan.pdf"))
    assert F.cer(doc.text, _truth(pages)) <= 0.02
    assert doc.metadata["format"] == "pdf" and doc.metadata["ocr_pages"][0][0] == 1
    # every character of a recognised line maps to page 1 and a box on the page
    for start, end, page, x0, y0, x1, y1 in doc.metadata["ocr_lines"]:
        assert page == 1 and 0 <= x0 < x1 <= 1241 and 0 <= y0 < y1 <= 1754 and doc.text[start:end].strip()
    # the section path of a drawn 一、 heading survives OCR
    chunks = chunk_document(doc)
    hit = [c for c in chunks if F.QUESTION_SENTENCE in c.text]
    assert hit and hit[0].section[-1] == "三、重点任务" and hit[0].metadata["page"] == 1


def test_traditional_png(tmp_path):
    pages = [F.draw_page(F.TRADITIONAL)]
    p = tmp_path / "scan.png"
    pages[0].image.save(p)
    doc = load_file(p)
    assert doc.metadata["format"] == "image"
    assert F.cer(doc.text, _truth(pages)) <= 0.02


@pytest.mark.slow
@pytest.mark.parametrize("case,limit", [
    ("two_columns", 0.02), ("rotated_90", 0.02), ("rotated_270_traditional", 0.02), ("upside_down", 0.02),
    ("skewed", 0.05), ("noisy_traditional", 0.05),
])
def test_fixture_cer(tmp_path, case, limit):
    page = {
        "two_columns": lambda: F.draw_page(F.SIMPLIFIED + F.SIMPLIFIED_MORE, columns=2, size=28),
        "rotated_90": lambda: F.rotate(F.draw_page(F.SIMPLIFIED), 90),
        "rotated_270_traditional": lambda: F.rotate(F.draw_page(F.TRADITIONAL), 270),
        "upside_down": lambda: F.rotate(F.draw_page(F.SIMPLIFIED), 180),
        "skewed": lambda: F.skew(F.draw_page(F.SIMPLIFIED), 2.5),
        "noisy_traditional": lambda: F.noise(F.draw_page(F.TRADITIONAL)),
    }[case]()
    doc = load_file(F.save_pdf([page], tmp_path / f"{case}.pdf"))
    assert F.cer(doc.text, page.body) <= limit, doc.text


@pytest.mark.slow
def test_headers_and_page_numbers_dropped_multipage_tiff(tmp_path):
    pages = F.report_pages(3)
    doc = load_file(F.save_tiff(pages, tmp_path / "report.tif"))
    assert "人民政府文件" not in doc.text and "- 2 -" not in doc.text
    assert F.cer(doc.text, _truth(pages)) <= 0.02
    # each page's first body sentence is on that page
    for no in (1, 2, 3):
        k = doc.text.index(f"第{no}部分")
        assert [r[2] for r in doc.metadata["ocr_lines"] if r[0] <= k < r[1]] == [no]


@pytest.mark.slow
def test_mixed_pdf_keeps_its_text_page(tmp_path):
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    scan = F.save_pdf([F.draw_page(F.SIMPLIFIED[:2])], tmp_path / "scan.pdf")
    pdfmetrics.registerFont(TTFont("wqy", F.FONT, subfontIndex=0))
    text_pdf = tmp_path / "text.pdf"
    c = canvas.Canvas(str(text_pdf), pagesize=A4)
    c.setFont("wqy", 14)
    c.drawString(72, 760, "第二页是文字层：本页的文字由排版软件写入，不需要识别。")
    c.showPage()
    c.save()
    from pypdf import PdfReader, PdfWriter

    w = PdfWriter()
    for f in (scan, text_pdf):
        for pg in PdfReader(f).pages:
            w.add_page(pg)
    mixed = tmp_path / "mixed.pdf"
    with open(mixed, "wb") as fh:
        w.write(fh)
    doc = load_file(mixed)
    assert "本页的文字由排版软件写入" in doc.text and "全面贯彻落实" in doc.text
    assert doc.metadata["ocr_pages_read"] == 1
    k = doc.text.index("本页的文字")
    assert [r[2] for r in doc.metadata["ocr_lines"] if r[0] <= k < r[1]] == [2]


@pytest.mark.slow
def test_unreadable_page_is_reported_and_the_rest_indexes(tmp_path, monkeypatch):
    import rag.ingest.ocr.engine as engine

    pages = [F.draw_page(F.SIMPLIFIED[:2]), F.draw_page(F.SIMPLIFIED[2:4])]
    real = engine.recognize
    calls = []

    def flaky(img):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("damaged scan")
        return real(img)

    monkeypatch.setattr(engine, "recognize", flaky)
    doc = load_file(F.save_pdf(pages, tmp_path / "two.pdf"))
    assert "第 1 页" in doc.metadata["ocr_errors"] and "damaged scan" in doc.metadata["ocr_errors"]
    assert "主要目标" in doc.text and "总体要求" not in doc.text


@pytest.mark.slow
def test_ocr_is_cached_by_page_image(tmp_path, monkeypatch):
    import rag.ingest.ocr.engine as engine

    pdf = F.save_pdf([F.draw_page(F.SIMPLIFIED[:2])], tmp_path / "s.pdf")
    first = load_file(pdf)
    monkeypatch.setattr(engine, "recognize", lambda img: pytest.fail("OCR ran again"))
    assert load_file(pdf).text == first.text


def test_scan_question_is_cited_by_page_and_box(tmp_path):
    from rag.answer.assistant import Assistant
    from rag.config import load_config
    from rag.index.kb import KnowledgeBase

    pages = [F.draw_page(F.SIMPLIFIED_MORE + F.SIMPLIFIED_MORE[1:], page_no=1), F.draw_page(F.SIMPLIFIED, page_no=2)]
    pdf = F.save_pdf(pages, tmp_path / "scan.pdf")
    cfg = load_config(overrides={"embed": {"model": "fake-64"}})
    kb = KnowledgeBase.open("scan", cfg, create=True)
    kb.add_paths([pdf], progress=False)
    ans = Assistant(kb, cfg).answer("新建和改造农村公路多少公里？", llm_backend="extractive")
    assert not ans.refused and ans.citations
    c = ans.citations[0]
    assert c.page == 2 and c.to_dict()["page"] == 2
    drawn = [box for text, box in pages[1].lines if "一百五十公里" in text or "新建和改造" in text]
    boxes = c.metadata["boxes"]
    assert boxes and all(b[0] == 2 for b in boxes)
    for x0, y0, x1, y1 in drawn:  # every drawn line the quote comes from lies inside a cited box
        assert any(b[1] - 6 <= x0 and b[2] - 6 <= y0 and x1 <= b[3] + 6 and y1 <= b[4] + 6 for b in boxes), (drawn, boxes)
    from rag.cite.report import render_markdown

    assert "第 2 页" in render_markdown([ans])
    # the source panel's crop: page 2 around the quote, the cited lines tinted
    import base64
    import io

    from PIL import Image

    from ui.crop import page_figures
    from ui.sources import sources_html

    figs = page_figures(ans)
    assert set(figs) == {c.n} and "第 2 页" in figs[c.n]
    png = base64.b64decode(figs[c.n].split("base64,")[1].split('"')[0])
    img = Image.open(io.BytesIO(png)).convert("RGB")
    assert img.width <= 640 and any(r > 200 and 100 < g < 160 and b < 60 for r, g, b in img.get_flattened_data())  # the outline
    assert 'class="src-page"' in sources_html(ans, 0, figs)
    pdf.write_bytes(pdf.read_bytes() + b"\n%changed")  # the file changed since indexing: no crop, the text stands
    from rag.ingest.ocr import crop

    crop._crop.cache_clear()
    assert page_figures(ans) == {}


def test_text_documents_have_no_page(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("一、总体要求\n全面贯彻落实党的二十大精神。", encoding="utf-8")
    doc = load_file(p)
    assert "ocr_lines" not in doc.metadata
    assert all("page" not in c.metadata for c in chunk_document(doc))


@pytest.mark.slow
def test_cli_ask_json_names_the_page(tmp_path):
    pages = [F.draw_page(F.SIMPLIFIED, page_no=1)]
    pdf = F.save_pdf(pages, tmp_path / "scan.pdf")
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAG_HOME=str(tmp_path / "home"), RAG_EMBED_MODEL="fake-64")
    run = lambda *a: subprocess.run([sys.executable, "-m", "rag", *a], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    r = run("index", str(pdf), "--kb", "scan", "--model", "fake-64", "--no-progress")
    assert r.returncode == 0, r.stderr
    r = run("ask", "新建和改造农村公路多少公里？", "--kb", "scan", "--json", "--llm", "extractive")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["citations"] and out["citations"][0]["page"] == 1


@pytest.mark.slow
def test_scan_question_with_the_real_local_model(tmp_path, monkeypatch):
    """The same question through the real encoder and the local llama.cpp model, when installed."""
    import importlib.util

    from rag.answer.assistant import Assistant
    from rag.config import load_config
    from rag.index.kb import KnowledgeBase
    from rag.llm.install import is_installed

    # the real models (the autouse fixture moved RAG_HOME, which the default models folder follows)
    models_dir = os.environ.get("RAG_MODELS_DIR") or str(Path.home() / ".rag-zh" / "models")
    cfg = load_config(env={"RAG_HOME": os.environ["RAG_HOME"], "RAG_MODELS_DIR": models_dir})
    if importlib.util.find_spec("llama_cpp") is None or not is_installed(cfg.llm.model, cfg.paths.models_dir):
        pytest.skip(f"the local model {cfg.llm.model} is not installed in {models_dir}")
    pages = [F.draw_page(F.SIMPLIFIED_MORE, page_no=1), F.draw_page(F.SIMPLIFIED, page_no=2)]
    kb = KnowledgeBase.open("scan", cfg, create=True)
    kb.add_paths([F.save_pdf(pages, tmp_path / "scan.pdf")], progress=False)
    ans = Assistant(kb, cfg).answer("新建和改造农村公路多少公里？", llm_backend="local")
    assert not ans.refused and "一百五十" in ans.text, ans.text
    cited = [c for c in ans.citations if c.supported]
    assert cited and cited[0].page == 2 and cited[0].metadata["boxes"]


@pytest.mark.slow
def test_vertical_writing_is_not_scrambled(tmp_path):
    """Columns top to bottom, right to left: read in that order. (Full-width commas drawn upright in
    a column read as ’ once the page is turned, so punctuation is left out of this CER.)"""
    import re

    page = F.draw_vertical(F.SIMPLIFIED[1] + F.SIMPLIFIED[3])
    p = tmp_path / "vertical.png"
    page.image.save(p)
    doc = load_file(p)
    words = lambda s: re.sub(r"[^\u3400-\u9fff]", "", s)  # noqa: E731
    assert F.cer(words(doc.text), words(page.body)) <= 0.02, doc.text
