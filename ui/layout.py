"""The page's layout: the Gradio components of each tab, built inside the caller's `gr.Blocks`.

Layout only — no event handlers (ui/events.py, ui/admin.py attach those) and no work: every
value shown here comes in as `PageDefaults`, which ui/app.py gathers once per page build. Each
builder returns a small dataclass of the components the handlers need, so the wiring names
components instead of passing twenty positional variables around. The `elem_id`s are the
browser test's and the page script's handles: keep them stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rag.config import RETRIEVE_MODES as MODES
from rag.config import Config
from rag.index.uploads import ALLOWED_SUFFIXES
from ui import render, sources

BACKENDS = ("local", "openai", "extractive")
MODE_LABELS = [("混合 hybrid (向量+BM25)", "hybrid"), ("向量 dense", "dense"), ("关键词 BM25", "bm25")]
BACKEND_LABELS = [("本地模型 local", "local"), ("OpenAI 兼容 openai", "openai"), ("抽取式 extractive (无生成)", "extractive")]


@dataclass(frozen=True)
class PageDefaults:
    """What the page shows before any event: KB names, the default KB and its example questions,
    the default backend and the model names to offer."""

    kb_names: list[str]
    default_kb: str
    examples: list[str]
    backend: str
    model_choices: list[str]


@dataclass(frozen=True)
class ChatView:
    chatbot: Any
    status: Any
    question: Any
    send: Any
    stop: Any
    clear: Any
    export: Any
    fb_box: Any  # the optional comment after a like/dislike
    fb_note: Any
    fb_comment: Any
    fb_send: Any
    kb_dd: Any  # settings of this session
    backend: Any
    model: Any
    topk: Any
    mode: Any
    panel: Any  # the source panel beside the chat

    @property
    def settings(self) -> list[Any]:
        """The settings components, in the order `events.settings_of` takes them."""
        return [self.kb_dd, self.backend, self.model, self.topk, self.mode]


@dataclass(frozen=True)
class DocsView:
    docs_kb: Any
    new_kb: Any
    new_kb_btn: Any
    kb_msg: Any
    files: Any
    upload_btn: Any
    upload_report: Any
    docs_table: Any
    del_doc: Any
    del_btn: Any
    refresh_btn: Any


@dataclass(frozen=True)
class FeedbackView:
    counts: Any
    refresh: Any
    export: Any


def chat_examples(questions: list[str] | None) -> list[dict[str, str]] | None:
    """Example questions in the form `gr.Chatbot(examples=...)` takes (None: no examples)."""
    return [{"text": q, "display_text": q} for q in questions or ()] or None


def welcome_html(default_kb: str, examples: list[str]) -> str:
    return (
        "<div class='welcome'><div class='welcome-title'>中文文档问答 · 每句回答都附出处</div>"
        "<div class='welcome-sub'>Ask questions about your documents; every answer cites the exact passage.</div>"
        f"<div class='welcome-kb'>当前知识库：<b>{render.esc(default_kb)}</b> · 可在「文档」页上传 txt / md / html / docx / pdf</div>"
        + ("<div class='welcome-try'>试试这些问题 · Try one of these</div>" if examples else "")
        + "</div>"
    )


def topbar() -> None:
    import gradio as gr

    with gr.Row(elem_classes="topbar"):
        gr.HTML(
            "<div class='brand'><span class='logo'>引</span><div><div class='brand-title'>rag-zh 文档问答</div>"
            "<div class='brand-sub'>检索 · 生成 · 引用核对 — answers with checked citations</div></div></div>"
        )


def chat_tab(cfg: Config, d: PageDefaults) -> ChatView:
    """The chat column (conversation, status, question, tools, feedback box, settings) and the
    source panel. Call inside `gr.Tab`."""
    import gradio as gr

    with gr.Row(equal_height=False):
        with gr.Column(scale=7, min_width=420):
            ask = _ask_column(d)
            settings = _settings(cfg, d)
        with gr.Column(scale=5, min_width=360, elem_id="src-col"):
            panel = gr.HTML(sources.panel_html([]), elem_id="sources", padding=False)
    return ChatView(**ask, **settings, panel=panel)


def _ask_column(d: PageDefaults) -> dict[str, Any]:
    import gradio as gr

    chatbot = gr.Chatbot(
        value=[],
        elem_id="chatbot",
        height=560,
        render_markdown=False,  # answers arrive as escaped HTML from ui.render
        sanitize_html=True,
        latex_delimiters=[],
        placeholder=welcome_html(d.default_kb, d.examples),
        examples=chat_examples(d.examples),
        buttons=["copy"],
        feedback_options=("Like", "Dislike"),
        show_label=False,
        layout="bubble",
    )
    status = gr.HTML(render.status_html("就绪 · Ready", busy=False), elem_id="status")
    with gr.Row(elem_classes="ask-row"):
        question = gr.Textbox(
            placeholder="输入问题，回车发送（可以追问）… Ask a question, Enter to send",
            show_label=False,
            lines=1,
            max_lines=6,
            scale=8,
            elem_id="question",
            autofocus=True,
        )
        send = gr.Button("发送", variant="primary", scale=1, min_width=80, elem_id="send")
        stop = gr.Button("停止", variant="secondary", scale=0, min_width=64, elem_id="stop")
    with gr.Row(elem_classes="tool-row"):
        clear = gr.Button("＋ 新对话 New chat", size="sm", elem_id="clear")
        export = gr.DownloadButton(
            "⬇ 导出对话报告 (Markdown)", size="sm", interactive=False, elem_id="export"
        )
    with gr.Group(visible=False, elem_id="fb-box") as fb_box:
        fb_note = gr.HTML("")
        with gr.Row():
            fb_comment = gr.Textbox(
                placeholder="补充说明（可选）：哪里好、哪里错、正确答案是什么…",
                show_label=False,
                scale=6,
                elem_id="fb-comment",
            )
            fb_send = gr.Button("提交说明", size="sm", scale=1, elem_id="fb-send")
    return dict(chatbot=chatbot, status=status, question=question, send=send, stop=stop, clear=clear,
                export=export, fb_box=fb_box, fb_note=fb_note, fb_comment=fb_comment, fb_send=fb_send)


def _settings(cfg: Config, d: PageDefaults) -> dict[str, Any]:
    import gradio as gr

    with gr.Accordion("⚙ 设置 Settings（只影响本会话）", open=False, elem_id="settings"):
        with gr.Row():
            kb_dd = gr.Dropdown(
                choices=d.kb_names, value=d.default_kb, label="知识库 Knowledge base", elem_id="kb"
            )
            backend = gr.Radio(
                choices=BACKEND_LABELS, value=d.backend, label="生成方式 LLM backend", elem_id="backend"
            )
        with gr.Row():
            model = gr.Dropdown(
                choices=d.model_choices,
                value=cfg.llm.model,
                allow_custom_value=True,
                label="模型 Model",
                interactive=d.backend != "extractive",
                elem_id="model",
            )
            topk = gr.Slider(1, 20, value=cfg.retrieve.k, step=1, label="检索段落数 top-k", elem_id="topk")
            mode = gr.Radio(
                choices=MODE_LABELS,
                value=cfg.retrieve.mode if cfg.retrieve.mode in MODES else "hybrid",
                label="检索方式 Retrieval",
                elem_id="mode",
            )
    return dict(kb_dd=kb_dd, backend=backend, model=model, topk=topk, mode=mode)


def docs_tab(cfg: Config, d: PageDefaults) -> DocsView:
    """KB picker and creation, upload, the document list and delete. Call inside `gr.Tab`."""
    import gradio as gr

    with gr.Row():
        docs_kb = gr.Dropdown(choices=d.kb_names, value=d.default_kb, label="知识库 Knowledge base", scale=3, elem_id="docs-kb")
        new_kb = gr.Textbox(label="新建知识库 New knowledge base", placeholder="名称，例如 reports_2024", scale=3, elem_id="new-kb")
        new_kb_btn = gr.Button("新建并切换", scale=1, elem_id="new-kb-btn")
    kb_msg = gr.HTML("")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            files = gr.File(
                file_count="multiple",
                file_types=list(ALLOWED_SUFFIXES),
                label=f"上传文件（txt · md · html · docx · pdf，单个不超过 {cfg.ui.max_upload_mb} MB）",
                elem_id="upload",
            )
            upload_btn = gr.Button("上传并索引 Upload & index", variant="primary", elem_id="upload-btn")
            upload_report = gr.HTML("", elem_id="upload-report")
        with gr.Column(scale=3):
            docs_table = gr.HTML("", elem_id="docs-table")
            with gr.Row():
                del_doc = gr.Dropdown(choices=[], label="选择要删除的文档", scale=4, elem_id="del-doc")
                del_btn = gr.Button("删除文档 Delete", variant="stop", scale=1, elem_id="del-btn")
            refresh_btn = gr.Button("↻ 刷新列表", size="sm")

    return DocsView(docs_kb=docs_kb, new_kb=new_kb, new_kb_btn=new_kb_btn, kb_msg=kb_msg, files=files,
                    upload_btn=upload_btn, upload_report=upload_report, docs_table=docs_table, del_doc=del_doc,
                    del_btn=del_btn, refresh_btn=refresh_btn)


def feedback_tab() -> FeedbackView:
    """How feedback is kept, its counts and the export as an evaluation set. Call inside `gr.Tab`."""
    import gradio as gr

    gr.HTML(
        "<div class='fb-help'>在回答下方点赞 / 踩（可附说明）会保存到本机 SQLite。"
        "这里可以把它们导出为新的评测题（BEIR 格式：queries.jsonl / answers.jsonl / qrels），"
        "用 <code>rag eval</code> 评测。被踩的题目标记为待复核（needs_review）。</div>"
    )
    fb_counts = gr.HTML("")
    with gr.Row():
        fb_refresh = gr.Button("↻ 刷新统计", size="sm")
        fb_export = gr.DownloadButton("⬇ 导出为评测集 (zip)", size="sm", elem_id="fb-export")

    return FeedbackView(counts=fb_counts, refresh=fb_refresh, export=fb_export)
