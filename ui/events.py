"""The chat tab's event handlers: ask, stop, clear, settings, and rating answers.

Each `wire_*` attaches handlers to the components ui/layout.py built. A handler only maps
between Gradio values and the glue: answering is `ui.chat.run_turn` (which calls the cached
`Assistant`), feedback is `ui.feedback.FeedbackStore`. Handlers must be defined inside a
`gr.Blocks` context, hence the nested functions.

Concurrency: asking runs in Gradio's queue under the shared "ask" id (at most 4 answers at
once, across chat box and example clicks); stop, clear and ratings skip the queue so they
answer at once even while answers stream.
"""

# no `from __future__ import annotations`: Gradio finds gr.SelectData / gr.LikeData parameters by
# their real annotations, and string annotations would silently break example clicks and ratings

import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from ui import render, sources
from ui.chat import ensure_state, new_state, run_turn, write_report
from ui.layout import ChatView, FeedbackView

log = logging.getLogger(__name__)

SettingsOf = Callable[..., dict[str, Any]]


def settings_maker(default_kb: str) -> SettingsOf:
    """`settings_of(kb, backend, model, k, mode)`: one turn's settings, as `run_turn` takes them."""

    def settings_of(kb: str, be: str, mdl: str, k: float, md: str) -> dict[str, Any]:
        return {"kb": kb or default_kb, "backend": be, "model": (mdl or "").strip(), "k": int(k), "mode": md}

    return settings_of


def wire_ask(chat: ChatView, state: Any, services: Any, settings_of: SettingsOf) -> list[Any]:
    """Question box, send button and example questions → a streamed turn. Returns the events
    (the stop button cancels them)."""
    import gradio as gr

    def on_ask(q: str, st: Any, kb: str, be: str, mdl: str, k: float, md: str):
        q = (q or "").strip()
        st = ensure_state(st)
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

    outputs = [chat.question, chat.chatbot, chat.status, chat.panel, state, chat.export, chat.fb_box]
    ask_evt = gr.on(
        triggers=[chat.question.submit, chat.send.click],
        fn=on_ask,
        inputs=[chat.question, state, *chat.settings],
        outputs=outputs,
        trigger_mode="once",
        show_progress="hidden",
        concurrency_limit=4,
        concurrency_id="ask",
    )

    def on_example(evt: gr.SelectData, st: Any, kb: str, be: str, mdl: str, k: float, md: str):
        v = evt.value
        q = v.get("text", "") if isinstance(v, dict) else str(v or "")
        yield from on_ask(q, st, kb, be, mdl, k, md)

    ex_evt = chat.chatbot.example_select(
        on_example,
        inputs=[state, *chat.settings],
        outputs=outputs,
        show_progress="hidden",
        concurrency_limit=4,
        concurrency_id="ask",
    )
    return [ask_evt, ex_evt]


def wire_controls(chat: ChatView, state: Any, ask_events: list[Any]) -> None:
    """Stop (cancels the streaming turn, keeps what was shown), new chat, backend → model."""
    import gradio as gr

    def on_stop(st: Any):
        st = ensure_state(st)
        if st["turns"] and st["turns"][-1].get("answer") is None and st["messages"]:
            t = st["turns"][-1]
            t["error"] = "stopped"
            i = len(st["turns"]) - 1
            body = render.answer_html(t.get("text", ""), (), i, hits=t.get("hits", ())) if t.get("text") else ""
            st["messages"][-1]["content"] = body + '<div class="ans-error">已停止 (stopped)</div>'
        return st["messages"], render.status_html("已停止", busy=False), st

    chat.stop.click(on_stop, [state], [chat.chatbot, chat.status, state], cancels=ask_events, queue=False,
                    show_progress="hidden")

    def on_clear(st: Any):
        st = new_state()
        return (
            st["messages"],
            render.status_html("新对话 · New conversation", busy=False),
            sources.panel_html([]),
            st,
            gr.DownloadButton(value=None, interactive=False),
            gr.Group(visible=False),
        )

    clear_out = [chat.chatbot, chat.status, chat.panel, state, chat.export, chat.fb_box]
    chat.clear.click(on_clear, [state], clear_out, queue=False, show_progress="hidden")
    chat.chatbot.clear(on_clear, [state], clear_out, queue=False, show_progress="hidden")  # the bubble's own 🗑

    def on_backend(be: str):
        return gr.Dropdown(interactive=be != "extractive")

    chat.backend.change(on_backend, [chat.backend], [chat.model], queue=False)


def wire_ratings(chat: ChatView, state: Any, store: Any, settings_of: SettingsOf) -> None:
    """👍/👎 on an answer → a feedback row (with the turn's settings), then an optional comment."""
    import gradio as gr

    def on_like(evt: gr.LikeData, st: Any, kb: str, be: str, mdl: str, k: float, md: str):
        st = ensure_state(st)
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

    chat.chatbot.like(on_like, [state, *chat.settings], [chat.fb_box, chat.fb_note, state], queue=False)

    def on_fb_comment(text: str, st: Any):
        st = ensure_state(st)
        fid = st.get("fb_current")
        if not fid or not (text or "").strip():
            return gr.skip(), "<div class='fb-note'>请先写下说明。</div>", st
        store.set_comment(fid, text)
        return "", "<div class='fb-note ok'>✓ 说明已保存，谢谢！</div>", st

    outs = [chat.fb_comment, chat.fb_note, state]
    chat.fb_send.click(on_fb_comment, [chat.fb_comment, state], outs, queue=False)
    chat.fb_comment.submit(on_fb_comment, [chat.fb_comment, state], outs, queue=False)


def feedback_counts_html(store: Any) -> str:
    c = store.counts()
    return f"<div class='fb-counts'>赞 {c['up']} · 踩 {c['down']}</div>"


def wire_feedback_tab(fb: FeedbackView, store: Any) -> None:
    """The Feedback tab: refresh the counts; export the feedback as an evaluation set (zip)."""
    from ui.feedback import export_zip

    def on_fb_export():
        d = tempfile.mkdtemp(prefix="rag-feedback-")
        path = export_zip(store, Path(d) / f"feedback-evalset-{time.strftime('%Y%m%d-%H%M%S')}.zip")
        return str(path)

    fb.refresh.click(lambda: feedback_counts_html(store), None, fb.counts, queue=False)
    fb.export.click(on_fb_export, None, fb.export)
