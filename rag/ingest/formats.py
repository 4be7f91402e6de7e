"""Format readers: bytes of an .html/.docx/.pdf file → (text, title hint, metadata).

Block elements become lines, HTML/DOCX headings become Markdown `#` lines, table rows become
`a | b`; HTML navigation/header/footer/scripts and PDF running headers/footers are left out.
Placeholder properties that authoring tools fill in ("untitled", "python-docx", "anonymous") are
not taken for a title or author. Every reader raises `IngestError` with a message saying what is
wrong with the file and what to do.

Split out of rag/ingest/load.py (which calls `read_html`, `read_docx`, `read_pdf`) so that module stays
about documents and files. bs4, python-docx and pypdf are imported inside the readers: a folder
of .txt files never pays for them.
"""

from __future__ import annotations

import io
import re

from rag.ingest.decode import decode_bytes
from rag.errors import IngestError
from rag.ingest.pdf_tables import join_page_tables, page_items
from rag.ingest.tables import Lines, cell_text


def read_html(data: bytes, name: str) -> tuple[str, str, str, dict]:
    from bs4 import BeautifulSoup

    # the declared charset (meta) wins when it decodes; otherwise detect as for text files
    encoding = ""
    m = re.search(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_-]+)", data[:4096], re.I)
    html = None
    if m:
        enc = m.group(1).decode("ascii", "ignore").lower()
        enc = {"gb2312": "gb18030", "gbk": "gb18030", "big5": "big5hkscs"}.get(enc, enc)
        try:
            html = data.decode(enc)
            encoding = enc
        except (UnicodeDecodeError, LookupError):
            html = None
    if html is None:
        html, encoding = decode_bytes(data, name)
    soup = BeautifulSoup(html, "html.parser")
    meta: dict = {}
    for key in ("article:published_time", "pubdate", "publishdate", "date", "dc.date"):
        tag = soup.find("meta", attrs={"property": key}) or soup.find("meta", attrs={"name": key})
        if tag and tag.get("content"):
            meta["date_hint"] = tag["content"].strip()
            break
    for key in ("author", "article:author"):
        tag = soup.find("meta", attrs={"name": key}) or soup.find("meta", attrs={"property": key})
        if tag and tag.get("content"):
            meta["author"] = tag["content"].strip()
            break
    title_hint = ""
    h1 = soup.find("h1")
    if h1 and h1.get_text(strip=True):
        title_hint = h1.get_text(" ", strip=True)
    elif soup.title and soup.title.get_text(strip=True):
        # "<title>文章标题 - 网站名</title>": keep the article part
        title_hint = re.split(r"\s+[-|_–—]\s+|_", soup.title.get_text(strip=True))[0].strip()
    # structural boilerplate: scripts, styles, navigation, page header/footer, forms
    for tag in soup(["script", "style", "noscript", "template", "svg", "iframe", "form", "nav", "header", "footer", "aside", "button", "select"]):
        tag.decompose()
    body = soup.body or soup
    lines = Lines()
    _html_lines(body, lines)
    text, tables = lines.text(lambda x: re.sub(r"[ \t\r\f\v]+", " ", x).strip())
    if tables:
        meta["tables"] = tables
    return text, title_hint, encoding, meta


_BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "li", "ul", "ol", "dl", "dt", "dd", "table", "tr",
    "blockquote", "pre", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "figure", "figcaption",
    "address", "center", "td", "th", "caption", "tbody", "thead",
}


_CJK_CH = "\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef“”‘’"
_CJK_BREAK = re.compile(rf"(?<=[{_CJK_CH}])[ \t\r]*\n\s*(?=[{_CJK_CH}])")


def _html_lines(node, lines: Lines) -> None:
    """Flatten HTML into lines: block elements start new lines, headings become `#` lines, a
    data table becomes row lines (rag.ingest.tables); a layout table's cells are blocks like any other."""
    from bs4 import NavigableString, Tag
    from bs4.element import Comment

    buf: list[str] = []

    def flush() -> None:
        s = "".join(buf)
        buf.clear()
        # a source line break between two Chinese characters is HTML formatting, not a space
        s = _CJK_BREAK.sub("", s)
        s = re.sub(r"\s*\n\s*", " ", s).strip()
        if s:
            lines.append(s)

    def walk(n) -> None:
        for child in n.children:
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                buf.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name.lower()
            if name in {"h1", "h2", "h3", "h4", "h5", "h6"}:
                flush()
                t = child.get_text(" ", strip=True)
                if t:
                    lines.append("#" * int(name[1]) + " " + t)
                continue
            if name == "table" and (found := _html_table(child)) is not None:
                flush()
                cap = child.find("caption")
                if cap is not None and cap.get_text(strip=True):
                    lines.append(cap.get_text(" ", strip=True))
                lines.add_table(*found)
                continue
            if name == "br":
                flush()
                continue
            if name == "img":
                continue
            block = name in _BLOCK_TAGS
            if block:
                flush()
            walk(child)
            if block:
                flush()

    walk(node)
    flush()


def _html_table(tbl) -> tuple[list[list[str]], int] | None:
    """(rows of cell texts, header rows marked by <thead> or all-<th> rows) of a data table, or
    None for a layout table — one holding tables, long cells (> 200 characters, or 80 on
    average) or never two filled cells in a row — whose cells are read as ordinary blocks.
    A cell spanning columns is written once; one spanning rows is repeated in each of them."""
    if tbl.find("table") is not None:
        return None
    rows: list[list[str]] = []
    pending: dict[int, list] = {}  # column → [text, rows still to fill, columns spanned]
    marked, counting = 0, True
    for tr in tbl.find_all("tr"):
        if tr.find_parent("table") is not tbl:
            continue
        cells = tr.find_all(["td", "th"], recursive=False)
        out: list[str] = []
        col = 0

        def fill_pending() -> None:
            nonlocal col
            while col in pending:
                p = pending[col]
                out.append(p[0])
                p[1] -= 1
                if p[1] <= 0:
                    del pending[col]
                col += p[2]

        for c in cells:
            fill_pending()
            t = cell_text(c.get_text(" ", strip=True))
            span = _span(c.get("colspan"), 50)
            down = _span(c.get("rowspan"), 1000)
            out.append(t)
            if down > 1:
                pending[col] = [t, down - 1, span]
            col += span
        fill_pending()
        rows.append(out)
        head = bool(cells) and (tr.find_parent("thead") is not None or all(c.name == "th" for c in cells))
        if counting and head:
            marked += 1
        else:
            counting = counting and not any(out)  # leading empty rows do not end the header
    filled = [len(c) for r in rows for c in r if c]
    if not filled or max(filled) > 200 or sum(filled) / len(filled) > 80:
        return None
    if not any(sum(1 for c in r if c) >= 2 for r in rows):
        return None
    return rows, marked


def _span(value, limit: int) -> int:
    try:
        return max(1, min(limit, int(str(value or "1").strip() or 1)))
    except ValueError:
        return 1


def read_docx(data: bytes, name: str) -> tuple[str, str, dict]:
    try:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        d = docx.Document(io.BytesIO(data))
    except Exception as e:
        raise IngestError(f"{name}: not a readable .docx ({type(e).__name__}: {e}); open and re-save it in Word/LibreOffice") from None
    meta: dict = {}
    title_hint = _real(d.core_properties.title)
    if _real(d.core_properties.author):
        meta["author"] = _real(d.core_properties.author)
    # core_properties.created is when the file was made (templates carry their own date), not a
    # publication date: it is not used as the document date
    lines = Lines()
    body = d.element.body
    for el in body.iterchildren():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag == "p":
            p = Paragraph(el, d)
            t = p.text.strip()
            if not t:
                continue
            style = (p.style.name if p.style is not None else "") or ""
            m = re.match(r"(?i)(?:heading|标题|標題)\s*(\d)", style)
            if style.strip().lower() in ("title", "标题", "標題"):
                if not title_hint:
                    title_hint = t
                lines.append(t)
            elif m:
                lines.append("#" * min(6, int(m.group(1))) + " " + t)
            else:
                lines.extend(x.strip() for x in t.splitlines() if x.strip())
        elif tag == "tbl":
            lines.add_table(*_docx_table(Table(el, d)))
    text, tables = lines.text()
    if tables:
        meta["tables"] = tables
    return text, title_hint, meta


def _docx_table(table) -> tuple[list[list[str]], int, bool]:
    """(rows of cell texts, header rows Word marks "repeat as header row", first row all bold)
    of a .docx table (rag.ingest.tables form: a cell merged across columns once, across rows repeated;
    a nested table flattened into its cell)."""
    from docx.oxml.ns import qn

    def text_of(cell) -> str:
        parts = [cell_text(cell.text)]
        for sub in cell.tables:
            parts.append("；".join(" ".join(cell_text(c.text) for c in r.cells) for r in sub.rows))
        return " ".join(p for p in parts if p)

    rows: list[list[str]] = []
    marked, counting, bold = 0, True, False
    for k, row in enumerate(table.rows):
        cells, prev = [], None
        for c in row.cells:
            if c._tc is prev:  # merged across columns: python-docx repeats the cell
                continue
            prev = c._tc
            cells.append(text_of(c))
        rows.append(cells)
        trpr = row._tr.trPr
        if counting and trpr is not None and trpr.find(qn("w:tblHeader")) is not None:
            marked += 1
        else:
            counting = False
        if k == 0:
            runs = [r for c in row.cells for p in c.paragraphs for r in p.runs if r.text.strip()]
            bold = bool(runs) and all(r.bold for r in runs)
    return rows, marked, bold


def _drop_running_lines(pages: list[list]) -> list:
    """Page headers/footers a PDF repeats on every page (the report's title, "内部资料",
    "第 3 页 共 9 页"): a line among the first/last two of a page whose text (digits folded)
    recurs there on at least 3 pages and half of them is dropped. A page item that is not a
    string (a table's rows, rag.ingest.pdf_tables) counts as a line and is never dropped.

    >>> pages = [["县委办公室文件", *[c + k for k in "甲乙丙丁"], f"- {i} -"] for i, c in enumerate("春夏秋", 1)]
    >>> _drop_running_lines(pages)[:5]
    ['春甲', '春乙', '春丙', '春丁', '夏甲']
    """
    from collections import Counter

    def key(s) -> str:
        return re.sub(r"\d+", "#", re.sub(r"\s+", "", s)) if isinstance(s, str) else ""

    def filled(s) -> bool:
        return not isinstance(s, str) or bool(s.strip())

    edge = Counter()
    for lines in pages:
        nonblank = [ln for ln in lines if filled(ln)]
        if len(nonblank) >= 5:  # on a page of a few lines every line is an "edge"
            edge.update({key(ln) for ln in nonblank[:2] + nonblank[-2:]})
    running = {k for k, c in edge.items() if k and c >= 3 and c >= 0.5 * len(pages)}
    out: list = []
    for lines in pages:
        nonblank_idx = [i for i, ln in enumerate(lines) if filled(ln)]
        edges = set(nonblank_idx[:2] + nonblank_idx[-2:]) if len(nonblank_idx) >= 5 else set()
        out.extend(ln for i, ln in enumerate(lines) if not (i in edges and key(ln) in running))
    return out


def read_pdf(data: bytes, name: str) -> tuple[str, str, dict]:
    if not data.lstrip().startswith(b"%PDF"):
        raise IngestError(f"{name}: not a PDF file (no %PDF header)")
    if b"%%EOF" not in data[-2048:]:
        raise IngestError(f"{name}: the PDF is truncated (no end-of-file marker); download or export it again")
    try:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception:
                raise IngestError(f"{name}: the PDF is password-protected; remove the password first") from None
        pages = [(p.extract_text() or "") for p in reader.pages]
        items = [page_items(p, t) for p, t in zip(reader.pages, pages)]  # tables as rows (rag.ingest.pdf_tables)
        info = reader.metadata
    except IngestError:
        raise
    except Exception as e:
        raise IngestError(f"{name}: unreadable PDF ({type(e).__name__}: {e})") from None
    meta: dict = {"pages": len(pages)}
    text = None
    from rag.ingest.ocr.pages import needs_ocr

    if any(needs_ocr(p) for p in pages):  # scanned pages: OCR them (rag.ingest.ocr), keep the text pages
        from rag.ingest.ocr.document import read_scanned_pdf

        scanned = read_scanned_pdf(data, name, pages)
        if scanned is not None:
            text, ocr_meta = scanned
            meta.update(ocr_meta)
    if text is None:
        lines = Lines()
        for it in join_page_tables(_drop_running_lines(items)):
            if isinstance(it, str):
                lines.append(it)
            else:
                lines.add_table(it)
        text, tables = lines.text(drop_empty=False)
        if tables:
            meta["tables"] = tables
    title_hint = ""
    if info is not None:
        title_hint = _real(info.title)
        if _real(info.author):
            meta["author"] = _real(info.author)
    return text, title_hint, meta


# Values that authoring tools fill in by themselves: not a real title/author.
_PLACEHOLDERS = {
    "", "untitled", "无标题", "無標題", "anonymous", "unknown", "python-docx", "administrator", "admin",
    "user", "author", "microsoft word", "microsoft office user", "reportlab", "(anonymous)", "unspecified",
}


def _real(value: str | None) -> str:
    v = (value or "").strip()
    return "" if v.lower() in _PLACEHOLDERS or v.lower().startswith(("microsoft word - ", "untitled")) else v

