"""The web chat (Gradio): ask, read cited answers, open the sources, manage documents.

The page only *renders* the events of the Python API (`rag.answer.assistant.Assistant.ask`: Status, Token,
Evidence, Final) and calls `rag.apps.service` for knowledge bases, assistants and uploads; retrieval,
prompting, citation checking and storing uploads live in rag/. This module wires the page:

    ui/app.py       build_app (defaults, the Blocks, which handlers attach where), serve, parse_auth
    ui/layout.py    the components of each tab (no handlers)
    ui/events.py    chat handlers: ask, stop, clear, ratings, the Feedback tab
    ui/admin.py     Documents tab handlers and the KB pickers
    ui/chat.py      one turn: Assistant.ask events → bubble, status, panel (no Gradio; tested)
    ui/examples.py  example questions from the corpus
    ui/theme.py     theme, CSS and page script (ui/assets/), offline
    ui/render.py    pure HTML of the conversation;  ui/sources.py  of the source panel
    ui/feedback.py  the feedback store and its export

State: every browser session has its own `gr.State` (conversation, answers, feedback ids) and
its own settings components (KB, backend, model, k, mode). The only things shared between
sessions are the knowledge bases (and, as caches, the opened `KnowledgeBase`/`Assistant`
objects in `rag.apps.service.Services`, which hold no conversation state: history is passed to
every `ask`).

Concurrency: Gradio's queue runs answers of different users concurrently (the local llama.cpp
model serialises generation with its own lock, so a second user sees "生成回答" until the model
is free, while retrieval and everything else proceed).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from rag.config import Config
from rag.errors import ConfigError
from rag.apps.service import Services
from ui.examples import example_questions
from ui.layout import BACKENDS, PageDefaults
from ui.theme import launch_kwargs

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

log = logging.getLogger(__name__)


def page_defaults(cfg: Config, services: Services) -> PageDefaults:
    """KB names (the configured KB first chosen, listed even before it exists), its example
    questions, the backend, and the installed models to offer."""
    try:
        kb_names = services.list_kbs()
    except Exception as e:
        log.warning("could not list knowledge bases: %s", e)
        kb_names = []
    default_kb = cfg.paths.kb if cfg.paths.kb in kb_names or not kb_names else kb_names[0]
    if default_kb not in kb_names:
        kb_names = [default_kb, *kb_names]
    model_choices = [cfg.llm.model]
    try:
        from rag.llm.install import installed_models

        model_choices += [m["name"] for m in installed_models(cfg.paths.models_dir) if m.get("installed")]
    except Exception as e:  # the list is a convenience; any model name can be typed in
        log.info("could not list installed models: %s", e)
    return PageDefaults(
        kb_names=kb_names,
        default_kb=default_kb,
        examples=example_questions(cfg, default_kb, services),
        backend=cfg.llm.backend if cfg.llm.backend in BACKENDS else "local",
        model_choices=list(dict.fromkeys(model_choices)),
    )


def build_app(cfg: Config, services: Services | None = None) -> Any:
    """The Gradio Blocks of the web chat (launch with `serve` or `.launch(**launch_kwargs(cfg))`)."""
    import gradio as gr

    from ui import admin, events, layout
    from ui.feedback import FeedbackStore

    services = services or Services(cfg)
    store = FeedbackStore.for_config(cfg)
    d = page_defaults(cfg, services)

    with gr.Blocks(title="rag-zh · 中文文档问答", fill_width=True, analytics_enabled=False) as demo:
        state = gr.State(None)
        layout.topbar()
        with gr.Tabs():
            with gr.Tab("问答 Chat", id="chat"):
                chat = layout.chat_tab(cfg, d)
            with gr.Tab("文档 Documents", id="docs"):
                docs = layout.docs_tab(cfg, d)
            with gr.Tab("反馈 Feedback", id="feedback"):
                fb = layout.feedback_tab()

        settings_of = events.settings_maker(d.default_kb)
        ask_events = events.wire_ask(chat, state, services, settings_of)
        events.wire_controls(chat, state, ask_events)
        events.wire_ratings(chat, state, store, settings_of)
        events.wire_feedback_tab(fb, store)
        admin.wire_documents(docs, services)
        admin.wire_kb_switch(docs, chat, state, services, cfg)

        def on_load(kb: str):
            # KBs created by other sessions or processes since the page was built
            names = services.list_kbs()
            if kb not in names:
                names = [kb, *names]
            return (gr.Dropdown(choices=names), gr.Dropdown(choices=names), *admin.docs_view(services, kb),
                    events.feedback_counts_html(store))

        demo.load(on_load, [docs.docs_kb], [chat.kb_dd, docs.docs_kb, docs.docs_table, docs.del_doc, fb.counts],
                  queue=False)

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
