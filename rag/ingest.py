"""Ingestion: files and folders → `rag.types.Document` (original text + cleaned text + offset map).

Supported: .txt .md/.markdown .html/.htm .docx .pdf (text layer). One bad file (binary renamed
.txt, empty, truncated PDF, undecodable bytes) raises `IngestError` with a message saying what is
wrong and what to do; `load_paths`/`iter_documents` report it as an `IngestFailure` and go on.

Encodings of text files: UTF-8 (with or without BOM) first; otherwise GB18030 (a superset of GBK
and GB2312) and Big5-HKSCS are both tried strictly and the decoding whose Chinese characters are
most plausible wins (share of characters in the "common" sets: GB2312 level 1 ∪ Big5 level 1;
Big5 bytes read as GB18030 decode without error but give rare characters — this is why a plain
"first decoder that does not fail" is wrong). charset-normalizer covers everything else (UTF-16,
Latin-1 …). Nothing is decoded with errors="replace": an undecodable file is an error, never
mojibake.

`Document.text` is the decoded file text for .txt/.md (CRLF kept, so offsets match the file);
for .html/.docx/.pdf it is the text extracted from the file (block elements → lines, HTML/DOCX
headings → Markdown `#` lines, table rows → `a | b`; HTML navigation/header/footer/scripts and
PDF running headers/footers left out), since those files have no character stream a user could
point into. Offsets are into `Document.text`. Placeholder properties that authoring tools fill in
("untitled", "python-docx", "anonymous") are not taken for a title or author.

Deliberate compromise: a file is read and decoded in one go (a 50 MB file costs a few hundred MB
transiently); files above `MAX_BYTES` are refused with a message instead of exhausting memory.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import io
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from rag.errors import IngestError
from rag.types import Document

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".docx", ".pdf"}
MAX_BYTES = 256 * 1024 * 1024  # refuse larger files rather than exhaust memory


@dataclass(frozen=True)
class IngestFailure:
    """A file that could not be ingested, and why (the message is meant for the user)."""

    path: str
    error: str

    def __str__(self) -> str:
        return f"{self.path}: {self.error}"


# ---------------------------------------------------------------------------------------------
# encoding detection


def _common_chars() -> frozenset[str]:
    """GB2312 level-1 (3755 most frequent simplified) ∪ Big5 level-1 (5401 frequent traditional)
    characters, generated from the codecs themselves (no data file)."""
    chars: set[str] = set()
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            try:
                chars.add(bytes((hi, lo)).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    for hi in range(0xA4, 0xC7):
        for lo in [*range(0x40, 0x7F), *range(0xA1, 0xFF)]:
            try:
                chars.add(bytes((hi, lo)).decode("big5"))
            except UnicodeDecodeError:
                pass
    return frozenset(chars)


_COMMON: frozenset[str] | None = None
_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# characters a Chinese text normally holds besides ideographs: CJK/full-width punctuation, general
# punctuation, letter-like and number forms (℃ Ⅰ), arrows and maths, enclosed numbers (①),
# box drawing and shapes (● ■), Latin-1, Greek/Cyrillic, kana, bopomofo, vertical forms
_USUAL_RE = re.compile(
    r"[\x00-\xff\u0370-\u04ff\u2000-\u206f\u2100-\u23ff\u2460-\u27bf\u3000-\u312f"
    r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]"
)


def plausibility(text: str) -> tuple[float, int]:
    """(how plausible a decoding is, number of Chinese characters it has).

    The score is the share of Chinese characters that are common ones (GB2312 level 1 ∪ Big5
    level 1), lowered by the share of characters no Chinese text normally has. Correctly decoded
    Chinese scores ~1.0 (bullets ● and ① do not count against it); Big5 read as GB18030 ≈ 0.6.

    >>> round(plausibility("党组织建设①● 扎实推进")[0], 2), plausibility("abc")
    (1.0, (1.0, 0))
    """
    global _COMMON
    if _COMMON is None:
        _COMMON = _common_chars()
    cjk = _CJK_RE.findall(text)
    odd = len(text) - len(_USUAL_RE.findall(text))
    if not cjk:
        return (1.0 if odd == 0 else 0.0), 0
    common = sum(1 for c in cjk if c in _COMMON)
    return common / len(cjk) - odd / (len(cjk) + odd), len(cjk)


_SAMPLE = 1 << 20  # bytes scored per candidate encoding
_BINARY_MAGIC = {
    b"%PDF": "a PDF file",
    b"PK\x03\x04": "a ZIP/DOCX/XLSX file",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x7fELF": "an executable",
    b"\xd0\xcf\x11\xe0": "an old MS Office (.doc/.xls) file",
}


def _check_binary(data: bytes, name: str) -> None:
    for magic, what in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise IngestError(f"{name}: this is {what}, not text; rename it with the right suffix or convert it to text")
    head = data[:65536]
    if b"\x00" in head:
        raise IngestError(f"{name}: binary data (NUL bytes); not a text file — convert it to .txt/.docx/.pdf first")
    ctrl = sum(1 for b in head if b < 0x20 and b not in (9, 10, 11, 12, 13, 27))
    if head and ctrl / len(head) > 0.005:
        raise IngestError(f"{name}: binary data ({ctrl} control bytes in the first {len(head)}); not a text file")


def _strict_decode_sample(data: bytes, encoding: str) -> str | None:
    try:
        dec = codecs.getincrementaldecoder(encoding)(errors="strict")
        return dec.decode(data[:_SAMPLE], final=len(data) <= _SAMPLE)
    except UnicodeDecodeError:
        return None


def decode_bytes(data: bytes, name: str = "input") -> tuple[str, str]:
    """Decode file bytes to text; returns (text, encoding). Raises IngestError for empty,
    binary or undecodable input.

    >>> decode_bytes("中文".encode("gbk"))
    ('中文', 'gb18030')
    >>> decode_bytes(b"\\xef\\xbb\\xbfhi")
    ('hi', 'utf-8-sig')
    """
    if not data.strip(b" \t\r\n\x0b\x0c") or data.strip() in (codecs.BOM_UTF8, b""):
        raise IngestError(f"{name}: the file is empty")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise IngestError(f"{name}: UTF-16 file with invalid bytes at {e.start}; re-save it as UTF-8") from None
        score, n = plausibility(text[:200000])
        if n >= 4 and score < 0.85:
            raise IngestError(f"{name}: starts like UTF-16 text but decodes to garbage; binary file?")
        return text, "utf-16"
    if b"\x00" in data[:65536] and len(data) % 2 == 0:
        # UTF-16 without a byte-order mark (some Windows tools): NULs in every other byte
        for enc in ("utf-16-le", "utf-16-be"):
            try:
                text = data.decode(enc)
            except UnicodeDecodeError:
                continue
            score, n = plausibility(text[:200000])
            printable = sum(1 for c in text[:20000] if c.isprintable() or c in "\r\n\t") / max(1, min(len(text), 20000))
            if printable > 0.98 and (n == 0 or score >= 0.85):
                return text, enc
    _check_binary(data, name)
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as e:
            raise IngestError(f"{name}: starts with a UTF-8 BOM but has invalid UTF-8 at byte {e.start + 3}") from None
    utf8_error: UnicodeDecodeError | None = None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        text, utf8_error = None, e
    if text is not None:
        _check_double_encoded(text, name)
        return text, "utf-8"
    if utf8_error is not None and utf8_error.start >= len(data) - 3 and utf8_error.reason == "unexpected end of data":
        raise IngestError(f"{name}: the file ends in the middle of a UTF-8 character (truncated?); re-save or re-download it")
    # Chinese legacy encodings: decode strictly, keep the most plausible.
    scored: list[tuple[float, int, str]] = []
    for enc in ("gb18030", "big5hkscs"):
        sample = _strict_decode_sample(data, enc)
        if sample is None:
            continue
        score, n = plausibility(sample)
        scored.append((score, n, enc))
    scored.sort(key=lambda s: -s[0])
    for score, n, enc in scored:
        if n >= 8 and score < 0.85:
            continue  # decodes, but into rare characters: mojibake
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        return text, ("big5" if enc == "big5hkscs" else enc)
    # anything else (Latin-1 texts, UTF-16 without BOM …): ask charset-normalizer
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[: 4 * _SAMPLE]).best()
    except Exception:  # pragma: no cover - library failure
        best = None
    if best is not None and best.encoding:
        try:
            text = data.decode(best.encoding)
        except (UnicodeDecodeError, LookupError):
            text = None
        if text is not None and best.chaos < 0.2:
            # only for texts that are essentially Latin script (an English report with a few
            # accented letters): a Chinese text in an unknown encoding must not slip through as
            # plausible-looking mojibake
            sample = text[:200000]
            ascii_share = sum(1 for c in sample if c < "\x80") / max(1, len(sample))
            if ascii_share >= 0.8:
                return text, best.encoding
    where = f" (first invalid UTF-8 byte at offset {utf8_error.start})" if utf8_error is not None else ""
    raise IngestError(
        f"{name}: cannot decode the text: not valid UTF-8, GB18030/GBK or Big5{where}; "
        "re-save the file as UTF-8"
    )


_LATIN_MOJIBAKE = re.compile(r"[\xc0-\xef][\x80-\xbf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u203a\u20ac\u2122]")


def _check_double_encoded(text: str, name: str) -> None:
    """UTF-8 bytes once decoded as Latin-1/CP1252 and saved again as UTF-8 ("æ‚¨å½“å‰") are
    valid UTF-8 but unreadable; refuse them instead of indexing garbage."""
    sample = text[:200000]
    hits = len(_LATIN_MOJIBAKE.findall(sample))
    if hits >= 8 and hits > len(_CJK_RE.findall(sample)):
        raise IngestError(
            f"{name}: the text looks double-encoded (UTF-8 read as Latin-1, e.g. 'Ã¦' sequences); "
            "fix the file's encoding and re-save it as UTF-8"
        )


# ---------------------------------------------------------------------------------------------
# format readers: bytes → (text, title_hint, extra metadata)


def _read_html(data: bytes, name: str) -> tuple[str, str, str, dict]:
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


def _read_docx(data: bytes, name: str) -> tuple[str, str, dict]:
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


def _read_pdf(data: bytes, name: str) -> tuple[str, str, dict]:
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


# ---------------------------------------------------------------------------------------------
# documents


def doc_id_for(path: Path, root: Path | None) -> str:
    """Stable id: the path relative to `root` without its suffix, '/'-separated.

    If a sibling with the same stem and another supported suffix exists (a.txt and a.md), the
    suffix is kept so the two never collide.
    >>> doc_id_for(Path("seeds/000_x.txt"), Path("seeds"))
    '000_x'
    """
    try:
        rel = path.resolve().relative_to(root.resolve()) if root is not None else Path(path.name)
    except ValueError:
        rel = Path(path.name)
    stem = rel.with_suffix("").as_posix()
    siblings = [s for s in SUPPORTED_SUFFIXES if s != path.suffix.lower() and path.with_suffix(s).exists()]
    if siblings:
        return rel.as_posix()
    return stem


def load_file(path: str | Path, root: str | Path | None = None, source: str | None = None) -> Document:
    """Read one file into a Document (raises IngestError with an actionable message)."""
    from rag.clean import clean_text

    p = Path(path)
    name = str(path)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(f"{name}: unsupported file type {suffix or '(none)'}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}")
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise IngestError(f"{name}: file too large ({size / 2**20:.0f} MB > {MAX_BYTES // 2**20} MB); split it first")
        data = p.read_bytes()
    except IngestError:
        raise
    except FileNotFoundError:
        raise IngestError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise IngestError(f"{name}: is a folder; pass it to load_paths") from None
    except OSError as e:
        raise IngestError(f"{name}: cannot read the file ({e.strerror or e})") from None
    if not data.strip():
        raise IngestError(f"{name}: the file is empty")
    meta: dict = {}
    title_hint = ""
    if suffix == ".txt" and re.match(rb"(?:\xef\xbb\xbf)?\s*<(?:!doctype\s+html|html[\s>])", data[:512], re.I):
        suffix = ".html"  # a web page saved as .txt: read it as the HTML it is
    if suffix in TEXT_SUFFIXES:
        text, encoding = decode_bytes(data, name)
        fmt = "markdown" if suffix in {".md", ".markdown"} else "text"
    elif suffix in HTML_SUFFIXES:
        text, title_hint, encoding, meta = _read_html(data, name)
        fmt = "html"
    elif suffix == ".docx":
        text, title_hint, meta = _read_docx(data, name)
        fmt, encoding = "docx", ""
    else:
        text, title_hint, meta = _read_pdf(data, name)
        fmt, encoding = "pdf", ""
    if "\r" in text:
        # keep CRLF as it is (offsets must match the user's file); a lone CR (old Mac files)
        # becomes LF, one character for one, so offsets stay valid
        text = re.sub(r"\r(?!\n)", "\n", text)
    if not text.strip():
        raise IngestError(f"{name}: no text found in the file")
    root_p = Path(root) if root is not None else p.parent
    doc_id = doc_id_for(p, root_p)
    cleaned = clean_text(text, fmt=fmt, title_hint=title_hint)
    if not cleaned.clean.strip():
        raise IngestError(f"{name}: nothing left after removing page boilerplate (navigation, share widgets…)")
    metadata = {k: v for k, v in meta.items() if k != "date_hint" and v not in (None, "")}
    metadata.update({k: v for k, v in cleaned.metadata.items() if v not in (None, "")})
    if "date" not in metadata and meta.get("date_hint"):
        from rag.clean import parse_date

        d = parse_date(str(meta["date_hint"]))
        if d:
            metadata["date"] = d
    metadata.update(
        {
            "format": fmt,
            "encoding": encoding,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "path": name,
        }
    )
    title = cleaned.title or p.stem
    return Document(
        doc_id=doc_id,
        source=source or name,
        title=title,
        text=text,
        clean=cleaned.clean,
        offsets=cleaned.offsets,
        metadata=metadata,
    )


def _walk(folder: Path) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if f.startswith(".") or f.startswith("~$"):
                continue  # hidden files, Office lock files
            fp = Path(dirpath) / f
            if fp.suffix.lower() in SUPPORTED_SUFFIXES:
                files.append(fp)
    return sorted(files, key=lambda x: x.as_posix())


def iter_documents(paths: Sequence[str | Path] | str | Path) -> Iterator[Document | IngestFailure]:
    """Yield a Document or an IngestFailure per file; folders are walked (sorted, supported
    suffixes only). Ids are relative to the folder given (or the file's own folder); an id
    already given out in this call is qualified by the folder's name (`b/report`)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    seen: set[str] = set()
    ids: set[str] = set()
    for given in paths:
        g = Path(given)
        if g.is_dir():
            items: Iterable[tuple[Path, Path]] = ((f, g) for f in _walk(g))
        elif g.exists():
            items = [(g, g.parent)]
        else:
            yield IngestFailure(str(given), "no such file or folder")
            continue
        for f, root in items:
            key = str(f.resolve())
            if key in seen:
                continue
            seen.add(key)
            try:
                doc = load_file(f, root=root, source=str(f))
                if doc.doc_id in ids:
                    # two folders given with the same relative names: the later one is
                    # qualified by its folder's name (deterministic for the same arguments)
                    new_id = f"{root.resolve().name}/{doc.doc_id}"
                    k = 2
                    while new_id in ids:
                        new_id = f"{root.resolve().name}/{doc.doc_id}~{k}"
                        k += 1
                    log.warning("doc id %s is taken; %s gets %s", doc.doc_id, f, new_id)
                    doc = dataclasses.replace(doc, doc_id=new_id)
                ids.add(doc.doc_id)
                yield doc
            except IngestError as e:
                log.info("%s", e)  # reported to the caller as an IngestFailure
                yield IngestFailure(str(f), _strip_name(str(e), str(f)))
            except MemoryError:
                yield IngestFailure(str(f), "out of memory while reading; split the file")
            except Exception as e:  # a bug or an exotic file: report it, keep going
                log.exception("unexpected error reading %s", f)
                yield IngestFailure(str(f), f"unexpected error ({type(e).__name__}: {e})")


def _strip_name(msg: str, name: str) -> str:
    return msg[len(name) + 2 :] if msg.startswith(name + ": ") else msg


def load_paths(paths: Sequence[str | Path] | str | Path) -> tuple[list[Document], list[IngestFailure]]:
    """All documents under `paths` plus the files that failed (one bad file never stops the rest)."""
    docs: list[Document] = []
    failures: list[IngestFailure] = []
    for item in iter_documents(paths):
        (failures if isinstance(item, IngestFailure) else docs).append(item)
    return docs, failures
