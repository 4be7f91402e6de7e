"""A scanned PDF in the real web chat: uploaded (page-by-page OCR), asked about, and its citation's
card shows the page cropped around the quote with the cited lines highlighted.

Slow: `rag chat` in a subprocess (extractive answers, the fake encoder so the seeds index in
seconds; OCR is real), headless Debian Chromium through playwright (tests/test_ui_e2e.py's Page
helper). Screenshot: tests/artifacts/ocr-01-scan-citation.png. One fast test without a browser:
the page crop of a scan indexed from a relative path, asked from another working directory.
"""

from __future__ import annotations

import base64
import io
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _ocr_pages as F  # noqa: E402
from test_ui_e2e import CHROMIUM, ROOT, Page, browser, rag_chat  # noqa: E402,F401 - browser is a fixture


@pytest.fixture(scope="module")
def scan_app(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing")
    home = tmp_path_factory.mktemp("rag-home")
    with rag_chat(home, "extractive", 600, RAG_EMBED_MODEL="fake-64", PYTHONPATH=str(ROOT)) as app:
        yield app.url


@pytest.mark.slow
def test_scanned_pdf_upload_ask_and_page_crop(scan_app, browser, tmp_path):
    page = Page(browser, scan_app)
    pg = page.pg
    pages = [F.draw_page(F.SIMPLIFIED_MORE, header="XX县人民政府文件", page_no=1),
             F.draw_page(F.SIMPLIFIED, header="XX县人民政府文件", page_no=2)]
    pdf = F.save_pdf(pages, tmp_path / "县政府扫描件.pdf")
    page.tab("文档 Documents")
    pg.locator("#upload input[type=file]").set_input_files([str(pdf)])
    time.sleep(2)
    pg.click("#upload-btn")
    pg.wait_for_function("() => document.querySelectorAll('#upload-report li').length >= 1", timeout=600_000, polling=500)
    ok = pg.locator("#upload-report li.up-ok").all_inner_texts()
    assert ok and "县政府扫描件.pdf" in ok[0], pg.locator("#upload-report").inner_text()

    page.tab("问答 Chat")
    page.ask("新建和改造农村公路多少公里？")
    links = pg.locator("#chatbot .message.bot").last.locator("a.cite")
    assert links.count() >= 1
    href = links.first.get_attribute("href")
    links.first.click()
    card = pg.locator(f"#sources {href}")
    card.wait_for(state="visible", timeout=10_000)
    assert "一百五十公里" in card.inner_text()
    img = card.locator("figure.src-page img")
    img.wait_for(state="visible", timeout=10_000)
    assert "第 2 页" in card.locator("figure.src-page figcaption").inner_text()
    src = img.get_attribute("src")
    assert src.startswith("data:image/png;base64,")  # made by the server, no file URL reaches the page
    assert pg.evaluate("el => el.naturalWidth > 100 && el.complete", img.element_handle())
    from PIL import Image

    crop = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB")
    assert any(r > 200 and 100 < g < 160 and b < 60 for r, g, b in crop.get_flattened_data()), "the cited lines are not highlighted"
    card.scroll_into_view_if_needed()
    time.sleep(1)
    page.shot("ocr-01-scan-citation")
    assert page.external == [], page.external


def test_page_crop_when_the_working_directory_is_elsewhere(tmp_path, monkeypatch):
    """No browser: a scan indexed from a relative path still gets its page crop once the working
    directory has changed — the index recorded the file's absolute path, nothing is guessed."""
    from rag.answer.assistant import Assistant
    from rag.config import load_config
    from rag.index.doc_texts import INDEXED_FILE
    from rag.index.kb import KnowledgeBase
    from rag.ingest.ocr import crop
    from ui.crop import page_figures

    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    (here / "scans").mkdir(parents=True)
    elsewhere.mkdir()
    F.save_pdf([F.draw_page(F.SIMPLIFIED, page_no=1)], here / "scans" / "scan.pdf")
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    cfg = load_config(overrides={"embed": {"model": "fake-64"}})
    monkeypatch.chdir(here)
    KnowledgeBase.open("scan", cfg, create=True).add_paths(["scans"], progress=False)  # real OCR
    monkeypatch.chdir(elsewhere)
    crop._crop.cache_clear()
    ans = Assistant(KnowledgeBase.open("scan", cfg), cfg).answer("新建和改造农村公路多少公里？", llm_backend="extractive")
    assert not ans.refused and ans.citations
    c = ans.citations[0]
    assert c.source == "scans/scan.pdf" and c.metadata[INDEXED_FILE] == str(here / "scans" / "scan.pdf")
    assert c.metadata["quote_exact"] is True and "一百五十公里" in c.quote
    assert set(page_figures(ans)) == {c.n}
