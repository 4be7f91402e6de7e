"""Scanned-page fixtures drawn on the fly (no binary fixtures): Chinese text in both scripts drawn
with the WenQuanYi Zen Hei CJK font onto A4 pages at 150 dpi, one or two columns, with a running
header and page numbers, then rotated, skewed or sprinkled with noise; saved as an image-only PDF
(Pillow writes each page as one JPEG/raster image, no text layer), PNG or multi-page TIFF.

`cer(ocr, truth)`: character error rate (Levenshtein distance / length of the truth) after removing
whitespace, computed with rapidfuzz. Used by tests/test_ocr.py and benchmarks/ocr.py.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

FONT = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
W, H = 1240, 1754  # A4 at 150 dpi
MARGIN = 110

SIMPLIFIED = [
    "一、总体要求",
    "全面贯彻落实党的二十大精神，坚持稳中求进工作总基调，完整准确全面贯彻新发展理念，加快构建新发展格局，着力推动高质量发展。",
    "二、主要目标",
    "到二〇二五年，全县地区生产总值达到三百二十亿元，城镇居民人均可支配收入达到四万二千元，农村居民人均可支配收入增长百分之八。",
    "三、重点任务",
    "实施乡村振兴战略，建设高标准农田十二万亩，新建和改造农村公路一百五十公里，完成农村危房改造八百户，让群众住上安全住房。",
]
SIMPLIFIED_MORE = [
    "四、保障措施",
    "加强组织领导，各乡镇各部门要把思想和行动统一到县委县政府的决策部署上来，主要负责同志亲自抓，分管负责同志具体抓。",
    "强化督促检查，县政府督查室每季度开展一次专项督查，对工作不力、进展缓慢的单位予以通报，确保各项任务按期完成。",
]
TRADITIONAL = [
    "一、基本情況",
    "本縣位於省境東北部，總面積三千六百平方公里，轄十二個鄉鎮，戶籍人口四十八萬人，是全國重要的商品糧生產基地。",
    "二、發展成就",
    "過去五年，全縣經濟總量穩步增長，財政收入年均增長百分之九，建成學校二十所、醫院三所，人民生活水平明顯提高。",
]
QUESTION_SENTENCE = "新建和改造农村公路一百五十公里"  # in SIMPLIFIED[5]


@dataclass
class Page:
    image: object  # PIL image
    body: str  # the drawn body text in reading order (no header, no page number)
    lines: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)  # drawn lines and boxes


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.truetype(FONT, size)


def _wrap(text: str, font, width: int, indent: int = 0) -> list[str]:
    lines, cur = [], ""
    for ch in text:
        if font.getlength(cur + ch) > width - (indent if not lines else 0):
            lines.append(cur)
            cur = ch
        else:
            cur += ch
    return lines + ([cur] if cur else [])


def draw_page(paragraphs: list[str], *, columns: int = 1, header: str | None = None, page_no: int | None = None,
              size: int = 30) -> Page:
    """One page: paragraphs flowed into `columns` columns (headings `一、` flush left, body indented
    two characters), optional header at the top and `- n -` at the bottom."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (W, H), 255)
    d = ImageDraw.Draw(img)
    font = _font(size)
    lines_out: list[tuple[str, tuple[int, int, int, int]]] = []
    if header:
        hf = _font(24)
        x = (W - hf.getlength(header)) / 2
        d.text((x, 50), header, fill=0, font=hf)
        d.line((MARGIN, 90, W - MARGIN, 90), fill=0, width=2)
    gap = 60
    col_w = (W - 2 * MARGIN - gap * (columns - 1)) // columns
    step = int(size * 1.6)
    col, y = 0, 130
    per_col = -(-len(paragraphs) // columns)  # balanced columns: a column break every per_col paragraphs
    for n, para in enumerate(paragraphs):
        if n and columns > 1 and n % per_col == 0:
            col, y = col + 1, 130
        heading = para.startswith(("一、", "二、", "三、", "四、"))
        indent = 0 if heading else 2 * size
        wrapped = _wrap(para, font, col_w, indent)
        for k, ln in enumerate(wrapped):
            if y + step > H - 140:
                col, y = col + 1, 130
                if col >= columns:
                    raise ValueError("text does not fit on the page")
            x = MARGIN + col * (col_w + gap) + (indent if k == 0 else 0)
            d.text((x, y), ln, fill=0, font=font)
            lines_out.append((ln, (int(x), y, int(x + font.getlength(ln)), y + size)))
            y += step
        y += size // 2
    if page_no is not None:
        t = f"- {page_no} -"
        pf = _font(24)
        d.text(((W - pf.getlength(t)) / 2, H - 90), t, fill=0, font=pf)
    return Page(img, "".join(paragraphs), lines_out)


def rotate(page: Page, degrees: int) -> Page:
    """The page scanned sideways/upside down (PIL sense: counter-clockwise)."""
    return Page(page.image.rotate(degrees, expand=True, fillcolor=255), page.body, [])


def skew(page: Page, degrees: float) -> Page:
    return Page(page.image.rotate(degrees, expand=False, fillcolor=255, resample=3), page.body, [])


def noise(page: Page, amount: float = 0.01, seed: int = 7) -> Page:
    """Salt-and-pepper specks on `amount` of the pixels, plus a light blur (a photocopy)."""
    from PIL import ImageFilter

    img = page.image.copy()
    px = img.load()
    rnd = random.Random(seed)
    for _ in range(int(W * H * amount)):
        x, y = rnd.randrange(img.width), rnd.randrange(img.height)
        px[x, y] = 0 if rnd.random() < 0.5 else 255
    return Page(img.filter(ImageFilter.GaussianBlur(0.6)), page.body, page.lines)


def save_pdf(pages: list[Page], path: Path) -> Path:
    imgs = [p.image.convert("RGB") for p in pages]
    imgs[0].save(path, "PDF", save_all=True, append_images=imgs[1:], resolution=150.0)
    return path


def save_tiff(pages: list[Page], path: Path) -> Path:
    imgs = [p.image for p in pages]
    imgs[0].save(path, "TIFF", save_all=True, append_images=imgs[1:], compression="tiff_deflate", dpi=(150, 150))
    return path


def strip_ws(s: str) -> str:
    return "".join(s.split())


def cer(ocr: str, truth: str) -> float:
    """Character error rate: edit distance / len(truth), whitespace ignored.

    >>> round(cer("全面贯彻落实", "全面贯彻落实党"), 3)
    0.143
    """
    from rapidfuzz.distance import Levenshtein

    t = strip_ws(truth)
    return Levenshtein.distance(strip_ws(ocr), t) / max(1, len(t))


def report_pages(n: int = 3, columns: int = 1) -> list[Page]:
    """`n` pages with the running header 「XX县人民政府文件」 and page numbers; each page its own
    text: simplified on odd pages, traditional on even ones, the paragraphs numbered by page."""
    out = []
    for i in range(1, n + 1):
        paras = list(SIMPLIFIED if i % 2 else TRADITIONAL)
        body = [p if p.startswith(("一、", "二、", "三、")) else f"第{i}部分。" + p for p in paras]
        heads = [k for k, p in enumerate(body) if p.startswith(("一、", "二、", "三、"))]
        body = body[heads[(i // 2) % len(heads)]:] if i > 2 else body  # later pages start elsewhere
        out.append(draw_page(body, columns=columns, header="XX县人民政府文件", page_no=i))
    return out


def draw_vertical(text: str, per_column: int = 20, size: int = 34) -> Page:
    """Vertical writing: columns of `per_column` characters, top to bottom, right to left."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (W, H), 255)
    d = ImageDraw.Draw(img)
    font = _font(size)
    cols = [text[i:i + per_column] for i in range(0, len(text), per_column)]
    for c, col in enumerate(cols):
        x = W - MARGIN - size - c * int(size * 1.9)
        for k, ch in enumerate(col):
            d.text((x, 150 + k * int(size * 1.15)), ch, fill=0, font=font)
    return Page(img, text, [])
