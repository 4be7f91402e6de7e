"""Format readers: bytes of an .html/.docx/.pdf file → (text, title hint, metadata).

Block elements become lines, HTML/DOCX headings become Markdown `#` lines, table rows become
`a | b`; HTML navigation/header/footer/scripts and PDF running headers/footers are left out.
Placeholder properties that authoring tools fill in ("untitled", "python-docx", "anonymous") are
not taken for a title or author. Every reader raises `IngestError` with a message saying what is
wrong with the file and what to do.

Split out of rag/ingest.py (which calls `read_html`, `read_docx`, `read_pdf`) so that module stays
about documents and files. bs4, python-docx and pypdf are imported inside the readers: a folder
of .txt files never pays for them.
"""

from __future__ import annotations

import io
import re

from rag.encodings import decode_bytes
from rag.errors import IngestError


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
    lines: list[str] = []
    _html_lines(body, lines)
    text = "\n".join(ln for ln in (re.sub(r"[ \t\r\f\v]+", " ", x).strip() for x in lines) if ln)
    return text, title_hint, encoding, meta


_BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "li", "ul", "ol", "dl", "dt", "dd", "table", "tr",
    "blockquote", "pre", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "figure", "figcaption",
    "address", "center", "td", "th", "caption", "tbody", "thead",
}


_CJK_CH = "\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef“”‘’"
_CJK_BREAK = re.compile(rf"(?<=[{_CJK_CH}])[ \t\r]*\n\s*(?=[{_CJK_CH}])")


def _html_lines(node, lines: list[str]) -> None:
    """Flatten HTML into lines: block elements start new lines, headings become `#` lines,
    table cells are joined with ' | '."""
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
            if name == "tr":
                flush()
                cells = [c.get_text(" ", strip=True) for c in child.find_all(["td", "th"], recursive=False)]
                row = " | ".join(c for c in cells if c)
                if row:
                    lines.append(row)
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
    lines: list[str] = []
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
            table = Table(el, d)
            for row in table.rows:
                cells: list[str] = []
                for c in row.cells:
                    ct = " ".join(c.text.split())
                    if ct and (not cells or cells[-1] != ct):  # merged cells repeat their text
                        cells.append(ct)
                if cells:
                    lines.append(" | ".join(cells))
    text = "\n".join(lines)
    return text, title_hint, meta


def _drop_running_lines(pages: list[list[str]]) -> list[str]:
    """Page headers/footers a PDF repeats on every page (the report's title, "内部资料",
    "第 3 页 共 9 页"): a line among the first/last two of a page whose text (digits folded)
    recurs there on at least 3 pages and half of them is dropped.

    >>> pages = [["县委办公室文件", *[c + k for k in "甲乙丙丁"], f"- {i} -"] for i, c in enumerate("春夏秋", 1)]
    >>> _drop_running_lines(pages)[:5]
    ['春甲', '春乙', '春丙', '春丁', '夏甲']
    """
    from collections import Counter

    def key(s: str) -> str:
        return re.sub(r"\d+", "#", re.sub(r"\s+", "", s))

    edge = Counter()
    for lines in pages:
        nonblank = [ln for ln in lines if ln.strip()]
        if len(nonblank) >= 5:  # on a page of a few lines every line is an "edge"
            edge.update({key(ln) for ln in nonblank[:2] + nonblank[-2:]})
    running = {k for k, c in edge.items() if k and c >= 3 and c >= 0.5 * len(pages)}
    out: list[str] = []
    for lines in pages:
        nonblank_idx = [i for i, ln in enumerate(lines) if ln.strip()]
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
        info = reader.metadata
    except IngestError:
        raise
    except Exception as e:
        raise IngestError(f"{name}: unreadable PDF ({type(e).__name__}: {e})") from None
    if not any(p.strip() for p in pages):
        raise IngestError(f"{name}: the PDF has no text layer (scanned images?); run OCR on it first")
    text = "\n".join(_drop_running_lines([p.strip("\n").split("\n") for p in pages]))
    meta: dict = {"pages": len(pages)}
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

