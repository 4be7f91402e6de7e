"""The page's look and script: theme, CSS (ui/assets/app.css + render's claim styles), page script.

Offline by design: the theme uses system fonts only (the default Google/IBM fonts would be
fetched, or fall back poorly for CJK), and the page script (ui/assets/page.js) is read once at
import and inlined into the page head, so the page makes no request outside the server (checked
by the browser test). Gradio 6 takes all of these at `Blocks.launch`, hence `launch_kwargs`.

Compromise: a missing asset file (e.g. a package built without ui/assets) leaves the page
unstyled or without citation links rather than failing to start; it is logged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rag.config import Config
from ui import render

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"


def _asset(name: str) -> str:
    p = ASSETS / name
    if not p.is_file():
        log.warning("web chat asset %s is missing", p)
        return ""
    return p.read_text(encoding="utf-8")


# citation links open their source card; the status line's seconds keep ticking
HEAD_JS = "\n<script>\n" + _asset("page.js") + "</script>\n"


def css() -> str:
    return _asset("app.css") + render.CLAIM_CSS


def theme() -> Any:
    import gradio as gr

    sans = ["PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Noto Sans SC",
            "Source Han Sans SC", "WenQuanYi Micro Hei", "system-ui", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
    return gr.themes.Soft(primary_hue="indigo", secondary_hue="amber", neutral_hue="slate", font=sans, font_mono=mono)


def launch_kwargs(cfg: Config) -> dict[str, Any]:
    """Theme, CSS, page script and upload limit for `Blocks.launch` (Gradio 6 takes them there)."""
    return {
        "theme": theme(),
        "css": css(),
        "head": HEAD_JS,
        "max_file_size": f"{int(cfg.ui.max_upload_mb)}mb",
    }
