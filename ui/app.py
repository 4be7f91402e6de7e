"""The web chat (Gradio): ask, read cited answers, open the sources, manage documents.

The page only *renders* the events of the Python API (`rag.answer.Assistant.ask`: Status, Token,
Evidence, Final) and calls `rag.kb.KnowledgeBase` for documents and `rag.uploads` for uploads;
retrieval, prompting, citation checking and storing uploads live in rag/. HTML comes from the
pure functions in ui/render.py.

State: every browser session has its own `gr.State` (conversation, answers, feedback ids) and
its own settings components (KB, backend, model, k, mode). The only things shared between
sessions are the knowledge bases (and, as caches, the opened `KnowledgeBase`/`Assistant`
objects, which hold no conversation state: history is passed to every `ask`).

Concurrency: Gradio's queue runs answers of different users concurrently (the local llama.cpp
model serialises generation with its own lock, so a second user sees "生成回答" until the model
is free, while retrieval and everything else proceed).

Offline: the theme uses system fonts only (no Google Fonts), analytics are off, and the page
script below is inline — the page makes no request outside the server (checked by the browser
test).
"""


import logging
import os
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable

from rag.config import Config
from rag.errors import ConfigError, RagError
from rag.types import Answer, Evidence, Final, Status, Token
from rag.service import Services, create_kb, delete_document, index_uploads
from rag.uploads import ALLOWED_SUFFIXES
from ui import render

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

log = logging.getLogger(__name__)

BACKENDS = ("local", "openai", "extractive")
from rag.config import RETRIEVE_MODES as MODES  # noqa: E402 - one home: rag.config
MODE_LABELS = [("混合 hybrid (向量+BM25)", "hybrid"), ("向量 dense", "dense"), ("关键词 BM25", "bm25")]
BACKEND_LABELS = [("本地模型 local", "local"), ("OpenAI 兼容 openai", "openai"), ("抽取式 extractive (无生成)", "extractive")]
STAGE_LABELS = {
    "condense": "理解追问",
    "retrieve": "检索段落",
    "generate": "生成回答",
    "cite": "核对引用",
}
ASSETS = Path(__file__).resolve().parent / "assets"


# ------------------------------------------------------------------ example questions


def example_questions(cfg: Config, kb_name: str, services: Services | None = None, n: int = 4) -> list[str]:
    """Questions to show on first load, drawn from the corpus rather than written here.

    1. `cfg.ui.examples` if configured;
    2. else the evaluation set of the same name (`evalsets/<kb>/queries.jsonl` beside the seeds),
       answerable first questions only (no follow-ups), at most one per relevant document;
    3. else one question per document title of the KB.
    """
    ex = cfg.ui.examples
    if isinstance(ex, str):
        ex = [x.strip() for x in ex.split("|") if x.strip()]
    if ex:
        return list(ex)[:n]
    out: list[str] = []
    es_dir = Path(cfg.paths.seeds_dir).resolve().parent / "evalsets" / kb_name
    if (es_dir / "queries.jsonl").is_file():
        try:
            from rag.evalsets import load_beir

            es = load_beir(es_dir)
            seen_docs: set[str] = set()
            for qid, q in es.queries.items():
                a = es.answers.get(qid, {})
                meta = q.get("metadata") or {}
                if a.get("follow_up_of") or meta.get("follow_up_of") or a.get("answerable") is False:
                    continue
                if meta.get("answerable") is False:
                    continue
                docs = tuple(sorted(es.qrels.get(qid, {})))
                if docs and docs[0] in seen_docs:
                    continue
                seen_docs.update(docs[:1])
                text = (q.get("text") or "").strip()
                if text and len(text) <= 60:
                    out.append(text)
                if len(out) >= n:
                    break
        except Exception as e:  # a broken eval set must not break the page
            log.warning("could not read example questions from %s: %s", es_dir, e)
    if not out and services is not None:
        try:
            for d in services.kb(kb_name).documents()[:n]:
                title = (getattr(d, "title", "") or "").strip()
                if title:
                    out.append(f"《{title[:30]}》主要讲了什么？")
        except Exception as e:
            log.info("no example questions from document titles: %s", e)
    return out[:n]


# ------------------------------------------------------------------ session state


def new_state() -> dict[str, Any]:
    return {"sid": uuid.uuid4().hex, "turns": [], "messages": [], "export_dir": None, "feedback": {}}


def _ensure(state: dict[str, Any] | None) -> dict[str, Any]:
    return state if isinstance(state, dict) and "sid" in state else new_state()


def history_pairs(state: dict[str, Any]) -> list[tuple[str, str]]:
    """(question, answer) of the finished turns, for multi-turn `ask`."""
    return [(t["question"], t["answer"].text) for t in state["turns"] if t.get("answer") is not None]


def panel_for(state: dict[str, Any]) -> str:
    blocks = []
    for i, t in enumerate(state["turns"]):
        a: Answer | None = t.get("answer")
        if a is not None:
            body = render.sources_html(a, i)
        elif t.get("error"):
            body = render.evidence_html(t.get("hits", ()), i, done=True)
        else:
            body = render.evidence_html(t.get("hits", ()), i)
        blocks.append((i, t["question"], body))
    return render.panel_html(blocks)


def write_report(state: dict[str, Any]) -> str | None:
    """The conversation as Markdown (`rag.report.render_markdown`, same as `rag report`)."""
    answers = [t["answer"] for t in state["turns"] if t.get("answer") is not None]
    if not answers:
        return None
    from rag.report import render_markdown

    if not state.get("export_dir"):
        state["export_dir"] = tempfile.mkdtemp(prefix="rag-chat-")
    path = Path(state["export_dir"]) / f"问答报告-{time.strftime('%Y%m%d-%H%M%S')}.md"
    for old in Path(state["export_dir"]).glob("*.md"):
        old.unlink(missing_ok=True)
    path.write_text(render_markdown(answers), encoding="utf-8")
    return str(path)


def _status_text(ev: Status) -> str:
    label = STAGE_LABELS.get(ev.stage, ev.stage)
    msg = f"{label}…"
    if ev.message and ev.message != label:
        msg += f" {ev.message}"
    return msg


def run_turn(
    services: Services,
    state: dict[str, Any] | None,
    question: str,
    settings: dict[str, Any],
    *,
    min_interval: float = 0.08,
) -> Iterator[tuple[dict[str, Any], str, str | None]]:
    """Drive one question through `Assistant.ask`; yields (state, status_html, panel_html or None).

    The chat bubble of the turn is `state["messages"][-1]`; panel None means unchanged. Pure
    glue: the UI event handler below maps this onto Gradio outputs, tests call it directly."""
    state = _ensure(state)
    turn = len(state["turns"])
    rec: dict[str, Any] = {"question": question, "settings": dict(settings), "answer": None, "hits": (), "text": ""}
    hist = history_pairs(state)
    state["turns"].append(rec)
    state["messages"] += [
        {"role": "user", "content": render.esc(question).replace("\n", "<br>")},
        {"role": "assistant", "content": render.streaming_message_html("", turn, ())},
    ]
    t0 = time.perf_counter()
    yield state, render.status_html("准备中… 正在打开知识库与模型", elapsed=0.0), panel_for(state)
    try:
        assistant = services.assistant(settings["kb"], settings.get("model") or "")
        events = assistant.ask(
            question,
            hist,
            llm_backend=settings.get("backend") or None,
            k=int(settings["k"]) if settings.get("k") else None,
            mode=settings.get("mode") or None,
        )
        status = render.status_html("检索段落…", elapsed=time.perf_counter() - t0)
        last = 0.0
        for ev in events:
            if isinstance(ev, Status):
                status = render.status_html(_status_text(ev), elapsed=time.perf_counter() - t0)
                yield state, status, None
            elif isinstance(ev, Evidence):
                rec["hits"] = tuple(ev.hits)
                yield state, status, panel_for(state)
            elif isinstance(ev, Token):
                rec["text"] += ev.text
                now = time.perf_counter()
                if now - last >= min_interval:
                    last = now
                    state["messages"][-1]["content"] = render.streaming_message_html(rec["text"], turn, rec["hits"])
                    yield state, status, None
            elif isinstance(ev, Final):
                a = ev.answer
                rec["answer"] = a
                rec["hits"] = a.hits
                state["messages"][-1]["content"] = render.final_message_html(a, turn, settings)
                took = a.timings.get("total", time.perf_counter() - t0) if a.timings else time.perf_counter() - t0
                yield state, render.status_html(render.final_status_text(a, took), busy=False), panel_for(state)
        if rec["answer"] is None:  # the stream ended without a Final event: show what we have
            raise RagError("回答中断（没有收到最终结果）")
    except RagError as e:
        rec["error"] = str(e)
        msg = str(e)
        if "not installed" in msg or "rag models install" in msg:
            msg += " —— 可在「设置」中改用 extractive（抽取式）后端。"
        state["messages"][-1]["content"] = (
            (render.answer_html(rec["text"], (), turn, hits=rec["hits"]) if rec["text"] else "")
            + f'<div class="ans-error">⚠ {render.esc(msg)}</div>'
        )
        yield state, render.status_html(f"出错：{msg}", busy=False, error=True), panel_for(state)
    except Exception as e:  # a bug: log it, show a short message, never a stack trace
        log.exception("answering failed")
        rec["error"] = f"{type(e).__name__}: {e}"
        state["messages"][-1]["content"] = (
            f'<div class="ans-error">⚠ 内部错误（{render.esc(type(e).__name__)}），详情见服务器日志。</div>'
        )
        yield state, render.status_html("内部错误，详情见服务器日志", busy=False, error=True), panel_for(state)


# ------------------------------------------------------------------ the page

_HEAD_JS = """
<script>
/* Citation links: a 【n】 in an answer is <a class="cite" href="#src-T-N">. Open the turn's
   block in the source panel, scroll the card into view and flash it. Capture phase, because the
   chat component handles link clicks itself. */
(function () {
  function openCard(id) {
    var card = document.getElementById(id);
    if (!card) return false;
    var d = card.closest('details');
    if (d && !d.open) d.open = true;
    document.querySelectorAll('.src-card.active').forEach(function (e) { e.classList.remove('active'); });
    card.classList.add('active');
    card.scrollIntoView({behavior: 'smooth', block: 'center'});
    var q = card.querySelector('mark.quote');
    if (q) { q.classList.remove('flash'); void q.offsetWidth; q.classList.add('flash'); }
    return true;
  }
  /* Keep the status line's elapsed seconds ticking between server updates. */
  var seen = new WeakMap();
  setInterval(function () {
    document.querySelectorAll('#status .status.busy .elapsed').forEach(function (el) {
      if (!seen.has(el)) seen.set(el, Date.now());
      var base = parseFloat(el.getAttribute('data-elapsed') || '0');
      el.textContent = Math.floor(base + (Date.now() - seen.get(el)) / 1000) + ' s';
    });
  }, 500);
  document.addEventListener('click', function (e) {
    var a = e.target && e.target.closest ? e.target.closest('a.cite') : null;
    if (!a) return;
    var href = a.getAttribute('href') || '';
    if (href.charAt(0) !== '#') return;
    e.preventDefault();
    e.stopPropagation();
    openCard(href.slice(1));
  }, true);
})();
</script>
"""


def _css() -> str:
    p = ASSETS / "app.css"
    return (p.read_text(encoding="utf-8") if p.is_file() else "") + render.CLAIM_CSS


def _theme():
    import gradio as gr

    # system fonts only: the default Google/IBM fonts would be fetched or fall back poorly for CJK
    sans = ["PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Noto Sans SC",
            "Source Han Sans SC", "WenQuanYi Micro Hei", "system-ui", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
    return gr.themes.Soft(primary_hue="indigo", secondary_hue="amber", neutral_hue="slate", font=sans, font_mono=mono)


def launch_kwargs(cfg: Config) -> dict[str, Any]:
    """Theme, CSS, page script and upload limit for `Blocks.launch` (Gradio 6 takes them there)."""
    return {
        "theme": _theme(),
        "css": _css(),
        "head": _HEAD_JS,
        "max_file_size": f"{int(cfg.ui.max_upload_mb)}mb",
    }


def build_app(cfg: Config, services: Services | None = None) -> Any:
    """The Gradio Blocks of the web chat (launch with `serve` or `.launch(**launch_kwargs(cfg))`)."""
    import gradio as gr

    from ui.feedback import FeedbackStore, export_zip

    services = services or Services(cfg)
    store = FeedbackStore.for_config(cfg)
    try:
        kb_names = services.list_kbs()
    except Exception as e:
        log.warning("could not list knowledge bases: %s", e)
        kb_names = []
    default_kb = cfg.paths.kb if cfg.paths.kb in kb_names or not kb_names else kb_names[0]
    if default_kb not in kb_names:
        kb_names = [default_kb, *kb_names]
    examples = example_questions(cfg, default_kb, services)
    default_backend = cfg.llm.backend if cfg.llm.backend in BACKENDS else "local"
    model_choices = [cfg.llm.model]
    try:
        from rag.models_install import installed_models

        model_choices += [m["name"] for m in installed_models(cfg.paths.models_dir) if m.get("installed")]
    except Exception as e:  # the list is a convenience; any model name can be typed in
        log.info("could not list installed models: %s", e)
    model_choices = list(dict.fromkeys(model_choices))

    welcome = (
        "<div class='welcome'><div class='welcome-title'>中文文档问答 · 每句回答都附出处</div>"
        "<div class='welcome-sub'>Ask questions about your documents; every answer cites the exact passage.</div>"
        f"<div class='welcome-kb'>当前知识库：<b>{render.esc(default_kb)}</b> · 可在「文档」页上传 txt / md / html / docx / pdf</div>"
        + ("<div class='welcome-try'>试试这些问题 · Try one of these</div>" if examples else "")
        + "</div>"
    )

    with gr.Blocks(title="rag-zh · 中文文档问答", fill_width=True, analytics_enabled=False) as demo:
        state = gr.State(None)
        with gr.Row(elem_classes="topbar"):
            gr.HTML(
                "<div class='brand'><span class='logo'>引</span><div><div class='brand-title'>rag-zh 文档问答</div>"
                "<div class='brand-sub'>检索 · 生成 · 引用核对 — answers with checked citations</div></div></div>"
            )
        with gr.Tabs():
            # ---------------------------------------------------------------- chat
            with gr.Tab("问答 Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=7, min_width=420):
                        chatbot = gr.Chatbot(
                            value=[],
                            elem_id="chatbot",
                            height=560,
                            render_markdown=False,  # answers arrive as escaped HTML from ui.render
                            sanitize_html=True,
                            latex_delimiters=[],
                            placeholder=welcome,
                            examples=[{"text": q, "display_text": q} for q in examples] or None,
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
                        with gr.Accordion("⚙ 设置 Settings（只影响本会话）", open=False, elem_id="settings"):
                            with gr.Row():
                                kb_dd = gr.Dropdown(
                                    choices=kb_names, value=default_kb, label="知识库 Knowledge base", elem_id="kb"
                                )
                                backend = gr.Radio(
                                    choices=BACKEND_LABELS, value=default_backend, label="生成方式 LLM backend", elem_id="backend"
                                )
                            with gr.Row():
                                model = gr.Dropdown(
                                    choices=model_choices,
                                    value=cfg.llm.model,
                                    allow_custom_value=True,
                                    label="模型 Model",
                                    interactive=default_backend != "extractive",
                                    elem_id="model",
                                )
                                topk = gr.Slider(1, 20, value=cfg.retrieve.k, step=1, label="检索段落数 top-k", elem_id="topk")
                                mode = gr.Radio(
                                    choices=MODE_LABELS,
                                    value=cfg.retrieve.mode if cfg.retrieve.mode in MODES else "hybrid",
                                    label="检索方式 Retrieval",
                                    elem_id="mode",
                                )
                    with gr.Column(scale=5, min_width=360, elem_id="src-col"):
                        panel = gr.HTML(render.panel_html([]), elem_id="sources", padding=False)

            # ---------------------------------------------------------------- documents
            with gr.Tab("文档 Documents", id="docs"):
                with gr.Row():
                    docs_kb = gr.Dropdown(choices=kb_names, value=default_kb, label="知识库 Knowledge base", scale=3, elem_id="docs-kb")
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

            # ---------------------------------------------------------------- feedback
            with gr.Tab("反馈 Feedback", id="feedback"):
                gr.HTML(
                    "<div class='fb-help'>在回答下方点赞 / 踩（可附说明）会保存到本机 SQLite。"
                    "这里可以把它们导出为新的评测题（BEIR 格式：queries.jsonl / answers.jsonl / qrels），"
                    "用 <code>rag eval</code> 评测。被踩的题目标记为待复核（needs_review）。</div>"
                )
                fb_counts = gr.HTML("")
                with gr.Row():
                    fb_refresh = gr.Button("↻ 刷新统计", size="sm")
                    fb_export = gr.DownloadButton("⬇ 导出为评测集 (zip)", size="sm", elem_id="fb-export")

        # ================================================================ handlers

        def settings_of(kb: str, be: str, mdl: str, k: float, md: str) -> dict[str, Any]:
            return {"kb": kb or default_kb, "backend": be, "model": (mdl or "").strip(), "k": int(k), "mode": md}

        def on_ask(q: str, st: Any, kb: str, be: str, mdl: str, k: float, md: str):
            q = (q or "").strip()
            st = _ensure(st)
            if not q:
                yield q, st["messages"], render.status_html("请输入问题", busy=False), gr.skip(), st, gr.skip(), gr.skip()
                return
            first = True
            for st, stat, pnl in run_turn(services, st, q, settings_of(kb, be, mdl, k, md)):
                # the feedback box belongs to an earlier answer: fold it away on a new question
                fb = gr.Group(visible=False) if first else gr.skip()
                first = False
                yield "", st["messages"], stat, pnl if pnl is not None else gr.skip(), st, gr.skip(), fb
            try:
                path = write_report(st)
            except Exception as e:
                log.warning("report export failed: %s", e)
                path = None
            yield "", st["messages"], gr.skip(), gr.skip(), st, gr.DownloadButton(value=path, interactive=path is not None), gr.skip()

        ask_inputs = [question, state, kb_dd, backend, model, topk, mode]
        ask_outputs = [question, chatbot, status, panel, state, export, fb_box]
        ask_evt = gr.on(
            triggers=[question.submit, send.click],
            fn=on_ask,
            inputs=ask_inputs,
            outputs=ask_outputs,
            trigger_mode="once",
            show_progress="hidden",
            concurrency_limit=4,
            concurrency_id="ask",
        )

        def on_example(evt: gr.SelectData, st: Any, kb: str, be: str, mdl: str, k: float, md: str):
            v = evt.value
            q = v.get("text", "") if isinstance(v, dict) else str(v or "")
            yield from on_ask(q, st, kb, be, mdl, k, md)

        ex_evt = chatbot.example_select(
            on_example,
            inputs=[state, kb_dd, backend, model, topk, mode],
            outputs=ask_outputs,
            show_progress="hidden",
            concurrency_limit=4,
            concurrency_id="ask",
        )

        def on_stop(st: Any):
            st = _ensure(st)
            if st["turns"] and st["turns"][-1].get("answer") is None and st["messages"]:
                t = st["turns"][-1]
                t["error"] = "stopped"
                i = len(st["turns"]) - 1
                body = render.answer_html(t.get("text", ""), (), i, hits=t.get("hits", ())) if t.get("text") else ""
                st["messages"][-1]["content"] = body + '<div class="ans-error">已停止 (stopped)</div>'
            return st["messages"], render.status_html("已停止", busy=False), st

        stop.click(on_stop, [state], [chatbot, status, state], cancels=[ask_evt, ex_evt], queue=False, show_progress="hidden")

        def on_clear(st: Any):
            st = new_state()
            return (
                st["messages"],
                render.status_html("新对话 · New conversation", busy=False),
                render.panel_html([]),
                st,
                gr.DownloadButton(value=None, interactive=False),
                gr.Group(visible=False),
            )

        clear_out = [chatbot, status, panel, state, export, fb_box]
        clear.click(on_clear, [state], clear_out, queue=False, show_progress="hidden")
        chatbot.clear(on_clear, [state], clear_out, queue=False, show_progress="hidden")  # the bubble's own 🗑

        def on_backend(be: str):
            return gr.Dropdown(interactive=be != "extractive")

        backend.change(on_backend, [backend], [model], queue=False)

        # ---------------------------------------------------------------- feedback
        def on_like(evt: gr.LikeData, st: Any, kb: str, be: str, mdl: str, k: float, md: str):
            st = _ensure(st)
            idx = evt.index if isinstance(evt.index, int) else evt.index[0]
            turn = idx // 2
            if turn >= len(st["turns"]) or st["turns"][turn].get("answer") is None:
                return gr.Group(visible=False), "", st
            t = st["turns"][turn]
            liked = evt.liked
            rating = 1 if liked is True or liked == "Like" else -1 if liked is False or liked == "Dislike" else 0
            settings = dict(t.get("settings") or settings_of(kb, be, mdl, k, md))
            fid = store.record(
                session=st["sid"],
                turn=turn,
                question=t["question"],
                answer=t["answer"],
                rating=rating,
                kb=settings.get("kb", ""),
                config=settings,
            )
            st["feedback"][turn] = fid
            st["fb_current"] = fid
            if rating == 0:
                return gr.Group(visible=False), "", st
            icon = "赞 (helpful)" if rating > 0 else "踩 (not helpful)"
            note = f"<div class='fb-note'>{icon} 已记录对第 {turn + 1} 个回答的评价。可以补充一句说明（可选）：</div>"
            return gr.Group(visible=True), note, st

        chatbot.like(on_like, [state, kb_dd, backend, model, topk, mode], [fb_box, fb_note, state], queue=False)

        def on_fb_comment(text: str, st: Any):
            st = _ensure(st)
            fid = st.get("fb_current")
            if not fid or not (text or "").strip():
                return gr.skip(), "<div class='fb-note'>请先写下说明。</div>", st
            store.set_comment(fid, text)
            return "", "<div class='fb-note ok'>✓ 说明已保存，谢谢！</div>", st

        fb_send.click(on_fb_comment, [fb_comment, state], [fb_comment, fb_note, state], queue=False)
        fb_comment.submit(on_fb_comment, [fb_comment, state], [fb_comment, fb_note, state], queue=False)

        def fb_stats():
            c = store.counts()
            return f"<div class='fb-counts'>赞 {c['up']} · 踩 {c['down']}</div>"

        def on_fb_export():
            d = tempfile.mkdtemp(prefix="rag-feedback-")
            path = export_zip(store, Path(d) / f"feedback-evalset-{time.strftime('%Y%m%d-%H%M%S')}.zip")
            return str(path)

        fb_refresh.click(fb_stats, None, fb_counts, queue=False)
        fb_export.click(on_fb_export, None, fb_export)

        # ---------------------------------------------------------------- documents
        def docs_view(kb: str):
            try:
                docs = services.kb(kb).documents()
            except RagError as e:
                return f"<div class='muted'>{render.esc(e)}</div>", gr.Dropdown(choices=[], value=None)
            choices = [(f"{d.title or d.doc_id}（{d.doc_id}）", d.doc_id) for d in docs]
            return render.documents_html(docs), gr.Dropdown(choices=choices, value=None)

        def on_upload(fs: Any, kb: str, progress=gr.Progress(track_tqdm=True)):
            if not fs:
                return "<div class='muted'>请先选择文件。</div>", *docs_view(kb)
            if isinstance(fs, (str, Path)) or not isinstance(fs, (list, tuple)):
                fs = [fs]
            lines = index_uploads(services, kb, fs, progress)
            return render.index_report_html(lines), *docs_view(kb)

        upload_btn.click(
            on_upload, [files, docs_kb], [upload_report, docs_table, del_doc], concurrency_limit=1, concurrency_id="index"
        )

        def on_delete(doc_id: str, kb: str):
            if not doc_id:
                return "<div class='muted'>请先选择要删除的文档。</div>", *docs_view(kb)
            try:
                msg = delete_document(services, kb, doc_id)
                html = f"<div class='ok'>{render.esc(msg)}</div>"
            except RagError as e:
                html = f"<div class='ans-error'>{render.esc(e)}</div>"
            return html, *docs_view(kb)

        del_btn.click(on_delete, [del_doc, docs_kb], [upload_report, docs_table, del_doc], concurrency_limit=1, concurrency_id="index")
        refresh_btn.click(docs_view, [docs_kb], [docs_table, del_doc], queue=False)

        def on_docs_kb(kb: str):
            return kb, *docs_view(kb)

        docs_kb.input(on_docs_kb, [docs_kb], [kb_dd, docs_table, del_doc], queue=False)

        def on_chat_kb(kb: str, st: Any):
            st = _ensure(st)
            ex = example_questions(cfg, kb, services) if not st["turns"] else None
            cb = gr.Chatbot(examples=[{"text": q, "display_text": q} for q in ex] or None) if ex is not None else gr.skip()
            return kb, cb

        kb_dd.input(on_chat_kb, [kb_dd, state], [docs_kb, chatbot], queue=False)

        def on_new_kb(name: str):
            try:
                name = create_kb(services, name)
            except RagError as e:
                return (f"<div class='ans-error'>{render.esc(e)}</div>", gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip())
            names = services.list_kbs()
            return (
                f"<div class='ok'>✓ 已新建知识库「{render.esc(name)}」，并在本会话切换到它。请上传文件。</div>",
                gr.Dropdown(choices=names, value=name),
                gr.Dropdown(choices=names, value=name),
                "",
                *docs_view(name),
            )

        new_kb_btn.click(on_new_kb, [new_kb], [kb_msg, docs_kb, kb_dd, new_kb, docs_table, del_doc], queue=False)

        def on_load(kb: str):
            names = services.list_kbs()
            if kb not in names:
                names = [kb, *names]
            return gr.Dropdown(choices=names), gr.Dropdown(choices=names), *docs_view(kb), fb_stats()

        demo.load(on_load, [docs_kb], [kb_dd, docs_kb, docs_table, del_doc, fb_counts], queue=False)

    demo.queue(default_concurrency_limit=4, max_size=64)
    return demo


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    """`"user:password"` → ("user", "password"); empty → None."""
    if not auth:
        return None
    if ":" not in auth:
        raise ConfigError("--auth takes user:password")
    user, pw = auth.split(":", 1)
    if not user or not pw:
        raise ConfigError("--auth takes user:password (both non-empty)")
    return user, pw


def serve(
    cfg: Config,
    *,
    host: str | None = None,
    port: int | None = None,
    auth: str | None = None,
    services: Services | None = None,
    block: bool = True,
) -> Any:
    """Build and launch the app; returns the Blocks (with `block=False` the server runs in a thread)."""
    demo = build_app(cfg, services)
    demo.launch(
        server_name=host or cfg.ui.host,
        server_port=int(port or cfg.ui.port),
        auth=parse_auth(auth if auth is not None else cfg.ui.auth),
        auth_message="rag-zh 文档问答：请登录",
        share=False,
        inbrowser=False,
        show_error=False,
        footer_links=[],
        prevent_thread_lock=not block,
        quiet=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        **launch_kwargs(cfg),
    )
    return demo
