"""The page crop of a scanned document's citation in the source panel: PNG bytes from
rag.ingest.ocr.crop → an `<img>` with a `data:` URI inside the citation's card.

The image is made by the server from the stored source file and embedded inline, so no file
path or URL reaches the page and nothing is served from the file system. The alt text and
caption name the page.
"""

from __future__ import annotations

import base64
from rag.types import Answer


def figure_html(png: bytes, page: int) -> str:
    """`<figure>` for a crop (pure).

    >>> figure_html(b"x", 3)
    '<figure class="src-page"><img class="src-page-img" alt="第 3 页：引文所在位置" src="data:image/png;base64,eA=="><figcaption>第 3 页</figcaption></figure>'
    """
    b64 = base64.b64encode(png).decode("ascii")
    return (f'<figure class="src-page"><img class="src-page-img" alt="第 {int(page)} 页：引文所在位置" '
            f'src="data:image/png;base64,{b64}"><figcaption>第 {int(page)} 页</figcaption></figure>')


def page_figures(answer: Answer) -> dict[int, str]:
    """Citation number → page figure, for the citations of scanned documents whose source file
    is still the indexed one."""
    from rag.ingest.ocr.crop import quote_crop

    out: dict[int, str] = {}
    for c in answer.citations:
        if c.page is None or c.n in out or not c.supported:
            continue
        png = quote_crop(c.metadata, c.source)
        if png:
            out[c.n] = figure_html(png, c.page)
    return out
