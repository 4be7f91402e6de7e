"""Decoding the bytes of a text file: UTF-8 (with or without BOM), UTF-16, GB18030 and Big5.

UTF-8 first; otherwise GB18030 (a superset of GBK and GB2312) and Big5-HKSCS are both tried
strictly and the decoding whose Chinese characters are most plausible wins (share of characters
in the "common" sets: GB2312 level 1 ∪ Big5 level 1; Big5 bytes read as GB18030 decode without
error but give rare characters — this is why a plain "first decoder that does not fail" is
wrong). charset-normalizer covers everything else (UTF-16, Latin-1 …). Nothing is decoded with
errors="replace": an undecodable file is an error, never mojibake.

Split out of rag/ingest/load.py (which re-exports `decode_bytes` and `plausibility`) so that module
stays about documents and files.

Deliberate compromise: candidate encodings are scored on the first MiB only (`_SAMPLE`), then the
winner decodes the whole file strictly; a file whose first MiB holds no Chinese at all is decided
by that sample (GB18030 is tried first), so a Big5 file that starts with a MiB of ASCII could be
misread; scoring the whole file would cost a second full decode of every large file.
"""

from __future__ import annotations

import codecs
import re

from rag.errors import IngestError


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
    found = _decode_utf16(data, name)
    if found is not None:
        return found
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
    found = _decode_chinese_legacy(data) or _decode_latin(data)
    if found is not None:
        return found
    where = f" (first invalid UTF-8 byte at offset {utf8_error.start})" if utf8_error is not None else ""
    raise IngestError(
        f"{name}: cannot decode the text: not valid UTF-8, GB18030/GBK or Big5{where}; "
        "re-save the file as UTF-8"
    )


def _decode_utf16(data: bytes, name: str) -> tuple[str, str] | None:
    """UTF-16 with a byte-order mark (garbage raises), or without one when NULs sit in every
    other byte and one byte order reads as plausible text; None when the data is not UTF-16."""
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
    return None


def _decode_chinese_legacy(data: bytes) -> tuple[str, str] | None:
    """GB18030 or Big5-HKSCS: both decoded strictly (on the sample), the most plausible wins;
    None when neither decodes into common Chinese characters."""
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
    return None


def _decode_latin(data: bytes) -> tuple[str, str] | None:
    """Anything else (Latin-1 texts, UTF-16 without BOM …), as charset-normalizer guesses it,
    but only for a text that is essentially Latin script; None otherwise."""
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
    return None


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

