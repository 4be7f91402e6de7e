"""Tables in .docx, HTML and text-layer PDFs (rag.ingest.tables, rag.ingest.pdf_tables): one line per row in the
`a | b` form, the header row repeated at the top of every chunk cut from a table (as context, its
offsets pointing at the real header), rows findable and quotable with their column names.

Fixtures are built here: a python-docx document, a reportlab PDF drawn with the CJK font, an
HTML page. Income values are `5000 + 731·(year − 2000)`, so the 2009 row reads
`2009 | 11579 | 3.9%` (growth `(y % 7) + 3 . (y % 10)`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.chunk.sections import chunk_document, chunk_orig_span
from rag.config import ChunkConfig, Config
from rag.ingest.load import load_file

HEADER = "年份 | 人均收入（元） | 增长率"
BEFORE = "下表列出历年主要经济指标，数据来源于县统计局。"
AFTER = "以上数据为初步统计结果，最终数据以正式公布为准。"
FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
SMALL = ChunkConfig(max_tokens=120, min_tokens=20)


def rows(first=2000, last=2039):
    return [[str(y), str(5000 + (y - 2000) * 731), f"{(y % 7) + 3}.{y % 10}%"] for y in range(first, last + 1)]


ROW_2009 = "2009 | 11579 | 3.9%"


def make_docx(path: Path, body_rows=None, header=("年份", "人均收入（元）", "增长率")) -> Path:
    import docx

    d = docx.Document()
    d.add_heading("某县统计公报", 1)
    d.add_heading("一、主要指标", 2)
    d.add_paragraph(BEFORE)
    body_rows = rows() if body_rows is None else body_rows
    if header or body_rows:
        t = d.add_table(rows=0, cols=3)
        for r in ([list(header)] if header else []) + body_rows:
            for c, v in zip(t.add_row().cells, r):
                c.text = v
    d.add_paragraph(AFTER)
    d.save(path)
    return path


def make_pdf(path: Path) -> Path:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

    pdfmetrics.registerFont(TTFont("WQY", str(FONT), subfontIndex=0))
    st = ParagraphStyle("zh", fontName="WQY", fontSize=11, leading=16)
    t = Table([HEADER.split(" | ")] + rows(), colWidths=[80, 120, 80])
    t.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), "WQY"), ("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
    SimpleDocTemplate(str(path), pagesize=A4).build([Paragraph("某县统计公报", st), Paragraph(BEFORE, st), t, Paragraph(AFTER, st)])
    return path


def make_html(path: Path) -> Path:
    body = "".join(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td></tr>" for a, b, c in rows())
    path.write_text(
        "<html><head><meta charset='utf-8'><title>统计公报</title></head><body><h1>某县统计公报</h1>"
        f"<p>{BEFORE}</p><table><thead><tr><th>年份</th><th>人均收入（元）</th><th>增长率</th></tr></thead>"
        f"<tbody>{body}</tbody></table><p>{AFTER}</p>"
        "<table><tr><td><p>布局表格里的一段话，说明情况。</p><p>另一段话。</p></td></tr></table></body></html>",
        encoding="utf-8",
    )
    return path


@pytest.fixture(params=["docx", "pdf", "html"])
def table_file(request, tmp_path):
    if request.param == "pdf" and not FONT.exists():
        pytest.skip("CJK font not installed")
    make = {"docx": make_docx, "pdf": make_pdf, "html": make_html}[request.param]
    return make(tmp_path / f"stats.{request.param}")


def table_chunks(chunks):
    return [c for c in chunks if "| 人均收入" in c.text or any(f"{y} |" in c.text for y in range(2000, 2040))]


def test_every_chunk_of_a_table_starts_with_its_header(table_file):
    doc = load_file(table_file)
    assert HEADER in doc.text and ROW_2009 in doc.text
    chunks = chunk_document(doc, SMALL)
    tab = table_chunks(chunks)
    assert len(tab) >= 3  # 40 rows do not fit in one chunk of 120 tokens
    for c in tab:
        # the first table chunk starts with the paragraph before the table, then the header
        assert c.text.startswith(HEADER) or c.text.startswith(BEFORE + "\n" + HEADER), c.text[:60]
    # every row is in exactly one chunk (no overlap inside the table), in order
    body = [ln for c in tab for ln in c.text.split("\n") if ln and ln[:4].isdigit()]
    assert body == [" | ".join(r) for r in rows()]
    # the paragraphs around the table are whole and unchanged
    assert sum(BEFORE in c.text for c in chunks) == 1 and sum(AFTER in c.text for c in chunks) == 1
    for c in chunks:
        for para in (BEFORE, AFTER):
            if para in c.text:
                i = c.text.index(para)
                a, b = chunk_orig_span(c, i, i + len(para))
                assert doc.text[a:b] == para


def test_offsets_of_rows_and_of_the_repeated_header(table_file):
    doc = load_file(table_file)
    chunks = chunk_document(doc, SMALL)
    c = next(c for c in chunks if ROW_2009 in c.text)
    i = c.text.index(ROW_2009)
    a, b = chunk_orig_span(c, i, i + len(ROW_2009))
    assert doc.text[a:b] == ROW_2009
    assert c.start <= a and b <= c.end  # the row is inside the chunk's own span
    cont = [x for x in table_chunks(chunks) if x.text.startswith(HEADER)]
    assert cont
    for x in cont:
        n = x.metadata["context_prefix"]
        assert x.text[:n] == HEADER + "\n"
        a, b = chunk_orig_span(x, 0, len(HEADER))
        assert doc.text[a:b] == HEADER  # the copy points at the real header ...
        assert b <= x.start  # ... which lies before the chunk's own rows: context, not its span
        s, h, e = x.metadata["tables"][0]
        assert (s, h) == (0, len(HEADER))


def test_row_is_found_and_quoted_with_its_column_name(table_file, tmp_path, monkeypatch):
    from embeddings import FakeEncoder
    from rag.answer.assistant import Assistant
    from rag.index.kb import KnowledgeBase

    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    cfg = Config()
    cfg.chunk = SMALL
    kb = KnowledgeBase.open("tables", cfg, encoder=FakeEncoder(), create=True)
    kb.add_paths([table_file], progress=False)
    hits = kb.search("2009年人均收入", k=3, mode="bm25")
    assert ROW_2009 in hits[0].chunk.text and "人均收入" in hits[0].chunk.text
    hits = kb.search("2009年人均收入", k=5)
    assert any(ROW_2009 in h.chunk.text for h in hits)
    ans = Assistant.open(kb, cfg).answer("2009年人均收入是多少？", llm_backend="extractive")
    assert not ans.refused
    assert "人均收入（元）：11579" in ans.text and "年份：2009" in ans.text
    cit = next(c for c in ans.citations if c.supported)
    assert cit.quote == ROW_2009  # the whole row, its "%" too
    doc = load_file(table_file)
    assert doc.text[cit.quote_start : cit.quote_end] == cit.quote


def test_headerless_empty_and_one_row_tables(tmp_path):
    # a table whose first row is data: split by rows, nothing repeated
    doc = load_file(make_docx(tmp_path / "a.docx", header=()))
    chunks = chunk_document(doc, SMALL)
    assert not any(c.metadata.get("context_prefix") for c in chunks)
    assert [ln for c in chunks for ln in c.text.split("\n") if ln[:4].isdigit()] == [" | ".join(r) for r in rows()]
    # an empty table and a one-row table: nothing crashes, the paragraphs stay
    for name, body, header in (("e.docx", [], ()), ("one.docx", [["2009", "11579", "3.9%"]], ())):
        doc = load_file(make_docx(tmp_path / name, body_rows=body, header=header))
        text = "\n".join(c.text for c in chunk_document(doc, SMALL))
        assert BEFORE in text and AFTER in text
        assert (ROW_2009 in text) == bool(body)
    doc = load_file(make_docx(tmp_path / "h.docx", body_rows=[]))  # a header row alone
    assert HEADER in "\n".join(c.text for c in chunk_document(doc, SMALL))


def test_a_table_row_is_never_a_heading(tmp_path):
    import docx

    d = docx.Document()
    d.add_paragraph("全县各乡镇的党员人数统计如下，供参考。")
    t = d.add_table(rows=0, cols=2)
    for r in (["乡镇", "党员人数"], ["一、城关镇", "320"], ["二、河口乡", "150"], ["三、新华镇", "210"]):
        for c, v in zip(t.add_row().cells, r):
            c.text = v
    d.save(tmp_path / "t.docx")
    chunks = chunk_document(load_file(tmp_path / "t.docx"))
    assert [c.section for c in chunks] == [()]
    assert "一、城关镇 | 320" in chunks[0].text


def test_merged_and_nested_cells(tmp_path):
    import docx

    d = docx.Document()
    t = d.add_table(rows=3, cols=3)
    for i, r in enumerate([["地区", "指标", "指标"], ["东区", "100", "5%"], ["东区", "120", "6%"]]):
        for j, v in enumerate(r):
            t.cell(i, j).text = v
    t.cell(0, 1).merge(t.cell(0, 2)).text = "指标"
    t.cell(1, 0).merge(t.cell(2, 0)).text = "东区"
    t.cell(2, 2).add_table(rows=1, cols=2).rows[0].cells[0].text = "备注"
    d.save(tmp_path / "m.docx")
    text = load_file(tmp_path / "m.docx").text
    lines = text.split("\n")
    assert lines[0] == "地区 | 指标"  # merged across columns: once
    assert lines[1].startswith("东区 | 100") and lines[2].startswith("东区 | 120")  # across rows: repeated
    assert "备注" in lines[2]  # the nested table is flattened into its cell


def test_layout_table_in_html_keeps_its_paragraphs(tmp_path):
    doc = load_file(make_html(tmp_path / "p.html"))
    assert "布局表格里的一段话，说明情况。\n另一段话。" in doc.text
    assert len(doc.metadata["tables"]) == 1


def test_pdf_prose_is_not_a_table(tmp_path):
    from rag.ingest.pdf_tables import find_blocks, splice

    prose = "第一段文字，讲的是一件事情。\n第二段文字，讲的是另一件事。\n第三段。"
    assert find_blocks(prose) == []
    # two-column prose: aligned "cells", but the plain text runs column by column, not row by row
    layout = "\n".join(f"左栏第{i}行文字    右栏第{i}行文字" for i in range(5))
    plain = "\n".join(f"左栏第{i}行文字" for i in range(5)) + "\n" + "\n".join(f"右栏第{i}行文字" for i in range(5))
    assert splice(plain, find_blocks(layout)) == plain.split("\n")


def test_markdown_pipe_table(tmp_path):
    body = "\n".join("| " + " | ".join(r) + " |" for r in rows())
    p = tmp_path / "t.md"
    p.write_text(f"# 统计\n\n{BEFORE}\n\n| 年份 | 人均收入（元） | 增长率 |\n|---|---:|---|\n{body}\n\n{AFTER}\n", encoding="utf-8")
    chunks = chunk_document(load_file(p), SMALL)
    tab = [c for c in chunks if "| 2009 |" in c.text or "| 2030 |" in c.text]
    assert len(chunks) >= 3 and all("| 年份 | 人均收入（元） | 增长率 |" in c.text.split("\n")[:2] for c in tab)
    from rag.ingest.tables import labelled_row

    assert labelled_row("| 年份 | 人均收入（元） | 增长率 |", "| 2009 | 11579 | 3.9% |") == "年份：2009，人均收入（元）：11579，增长率：3.9%"


@pytest.mark.slow
def test_local_model_answers_from_a_table_row(tmp_path, monkeypatch):
    """Real e5 embeddings and the default local model: the model is shown the row under its
    header line (rag.answer.evidence.select) and answers with the value, citing the row exactly."""
    from rag.answer.assistant import Assistant
    from rag.config import load_config
    from rag.index.kb import KnowledgeBase

    models = load_config().paths.models_dir
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAG_MODELS_DIR", models)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = load_config()
    cfg.chunk = SMALL
    path = make_docx(tmp_path / "stats.docx")
    kb = KnowledgeBase.open("tables", cfg, create=True)
    kb.add_paths([path], progress=False)
    ans = Assistant.open(kb, cfg).answer("2009年人均收入是多少？", llm_backend="local")
    assert not ans.refused, ans.text
    assert "11579" in ans.text.replace(",", "")
    cit = next(c for c in ans.citations if c.supported)
    assert cit.quote.startswith("2009 | 11579")
    assert load_file(path).text[cit.quote_start : cit.quote_end] == cit.quote


def test_model_is_shown_rows_under_their_header(tmp_path):
    from rag.answer.evidence import select
    from rag.types import Hit, Passage

    chunks = chunk_document(load_file(make_docx(tmp_path / "s.docx")), SMALL)
    c = next(c for c in chunks if ROW_2009 in c.text and c.text.startswith(HEADER))
    shown = select("2009年人均收入是多少？", [Passage.from_hit(1, Hit(c, 1.0, 1))], 60)[1]
    lines = shown.split("\n")
    assert lines[0].lstrip("…") == HEADER  # the header line first ...
    assert ROW_2009 in [ln.strip("…") for ln in lines]  # ... then the row, on a line of its own
