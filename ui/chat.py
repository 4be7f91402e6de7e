"""One chat turn and the session state: `Assistant.ask` events → chat bubble, status, source panel.

No Gradio here: `run_turn` yields (state, status_html, panel_html or None) and ui/events.py maps
that onto the page's components; the tests call it directly. HTML comes from ui/render.py and ui/sources.py.

The state is one plain dict per browser session (`gr.State`): `sid`, `turns` (question,
settings, hits, streamed text, Answer or error), `messages` (the chat bubbles), `feedback`
(turn → feedback id) and `export_dir`. Nothing in it is shared between sessions; the history
is passed to every `ask`, so the cached Assistant holds no conversation.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.types import Answer, Evidence, Final, Status, Token
from ui import render, sources

log = logging.getLogger(__name__)

STAGE_LABELS = {
    "condense": "理解追问",
    "retrieve": "检索段落",
    "generate": "生成回答",
    "cite": "核对引用",
}


def new_state() -> dict[str, Any]:
    return {"sid": uuid.uuid4().hex, "turns": [], "messages": [], "export_dir": None, "feedback": {}}


def ensure_state(state: dict[str, Any] | None) -> dict[str, Any]:
    return state if isinstance(state, dict) and "sid" in state else new_state()


def history_pairs(state: dict[str, Any]) -> list[tuple[str, str]]:
    """(question, answer) of the finished turns, for multi-turn `ask`."""
    return [(t["question"], t["answer"].text) for t in state["turns"] if t.get("answer") is not None]


def panel_for(state: dict[str, Any]) -> str:
    blocks = []
    for i, t in enumerate(state["turns"]):
        a: Answer | None = t.get("answer")
        if a is not None:
            if "figures" not in t:  # page crops of scanned sources, made once per answer
                from ui.crop import page_figures

                t["figures"] = page_figures(a)
            body = sources.sources_html(a, i, t["figures"])
        elif t.get("error"):
            body = sources.evidence_html(t.get("hits", ()), i, done=True)
        else:
            body = sources.evidence_html(t.get("hits", ()), i)
        blocks.append((i, t["question"], body))
    return sources.panel_html(blocks)


def write_report(state: dict[str, Any]) -> str | None:
    """The conversation as Markdown (`rag.cite.report.render_markdown`, same as `rag report`)."""
    answers = [t["answer"] for t in state["turns"] if t.get("answer") is not None]
    if not answers:
        return None
    from rag.cite.report import render_markdown

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
    services: Any,
    state: dict[str, Any] | None,
    question: str,
    settings: dict[str, Any],
    *,
    min_interval: float = 0.08,
) -> Iterator[tuple[dict[str, Any], str, str | None]]:
    """Drive one question through `Assistant.ask`; yields (state, status_html, panel_html or None).

    The chat bubble of the turn is `state["messages"][-1]`; panel None means unchanged. Pure
    glue: ui/events.py maps this onto Gradio outputs, tests call it directly."""
    state = ensure_state(state)
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
        from rag.errors import in_chinese

        yield state, _show_error(state, rec, turn, in_chinese(e)), panel_for(state)
    except Exception as e:  # a bug: log it, show a short message, never a stack trace
        log.exception("answering failed")
        rec["error"] = f"{type(e).__name__}: {e}"
        state["messages"][-1]["content"] = (
            f'<div class="ans-error">⚠ 内部错误（{render.esc(type(e).__name__)}），详情见服务器日志。</div>'
        )
        yield state, render.status_html("内部错误，详情见服务器日志", busy=False, error=True), panel_for(state)


def _show_error(state: dict[str, Any], rec: dict[str, Any], turn: int, msg: str) -> str:
    """An expected failure (RagError): the text streamed so far, then the message; the status."""
    rec["error"] = msg
    if "not installed" in msg or "rag models install" in msg:
        msg += " —— 可在「设置」中改用 extractive（抽取式）后端。"
    state["messages"][-1]["content"] = (
        (render.answer_html(rec["text"], (), turn, hits=rec["hits"]) if rec["text"] else "")
        + f'<div class="ans-error">⚠ {render.esc(msg)}</div>'
    )
    return render.status_html(f"出错：{msg}", busy=False, error=True)
