"""The Documents tab's handlers (upload, delete, new KB) and switching the knowledge base.

The operations themselves are `rag.apps.service` (index_uploads → rag.index.uploads, delete_document,
create_kb; they also tell the assistant cache that the KB changed); this module renders their
results and keeps the two KB pickers — the chat's settings and the Documents tab — in step.

Uploads and deletes run one at a time in Gradio's "index" queue: rag.index.uploads expects uploads to
one KB to be serialised by its caller, and one at a time is also what a 2-core machine can index.
"""

# no `from __future__ import annotations`: Gradio finds gr.SelectData / gr.LikeData parameters by
# their real annotations, and string annotations would silently break example clicks and ratings

from pathlib import Path
from typing import Any

from rag.config import Config
from rag.errors import RagError
from rag.apps.service import create_kb, delete_document, index_uploads
from ui import render
from ui.examples import example_questions
from ui.layout import ChatView, DocsView, chat_examples


def docs_view(services: Any, kb: str) -> tuple[str, Any]:
    """(document list HTML, the delete picker) of `kb`."""
    import gradio as gr

    try:
        docs = services.kb(kb).documents()
    except RagError as e:
        return f"<div class='muted'>{render.esc(e)}</div>", gr.Dropdown(choices=[], value=None)
    choices = [(f"{d.title or d.doc_id}（{d.doc_id}）", d.doc_id) for d in docs]
    return render.documents_html(docs), gr.Dropdown(choices=choices, value=None)


def wire_documents(docs: DocsView, services: Any) -> None:
    """Upload & index, delete, refresh the list."""
    import gradio as gr

    def on_upload(fs: Any, kb: str, progress=gr.Progress(track_tqdm=True)):
        if not fs:
            return "<div class='muted'>请先选择文件。</div>", *docs_view(services, kb)
        if isinstance(fs, (str, Path)) or not isinstance(fs, (list, tuple)):
            fs = [fs]
        lines = index_uploads(services, kb, fs, progress)
        return render.index_report_html(lines), *docs_view(services, kb)

    outs = [docs.upload_report, docs.docs_table, docs.del_doc]
    docs.upload_btn.click(on_upload, [docs.files, docs.docs_kb], outs, concurrency_limit=1, concurrency_id="index")

    def on_delete(doc_id: str, kb: str):
        if not doc_id:
            return "<div class='muted'>请先选择要删除的文档。</div>", *docs_view(services, kb)
        try:
            msg = delete_document(services, kb, doc_id)
            html = f"<div class='ok'>{render.esc(msg)}</div>"
        except RagError as e:
            html = f"<div class='ans-error'>{render.esc(e)}</div>"
        return html, *docs_view(services, kb)

    docs.del_btn.click(on_delete, [docs.del_doc, docs.docs_kb], outs, concurrency_limit=1, concurrency_id="index")
    docs.refresh_btn.click(lambda kb: docs_view(services, kb), [docs.docs_kb], [docs.docs_table, docs.del_doc],
                           queue=False)


def wire_kb_switch(docs: DocsView, chat: ChatView, state: Any, services: Any, cfg: Config) -> None:
    """Choosing a KB in either picker sets both; a new KB is created and chosen in both. An empty
    conversation shows the new KB's example questions."""
    import gradio as gr

    from ui.chat import ensure_state

    def on_docs_kb(kb: str):
        return kb, *docs_view(services, kb)

    docs.docs_kb.input(on_docs_kb, [docs.docs_kb], [chat.kb_dd, docs.docs_table, docs.del_doc], queue=False)

    def on_chat_kb(kb: str, st: Any):
        st = ensure_state(st)
        ex = example_questions(cfg, kb, services) if not st["turns"] else None
        cb = gr.Chatbot(examples=chat_examples(ex)) if ex is not None else gr.skip()
        return kb, cb

    chat.kb_dd.input(on_chat_kb, [chat.kb_dd, state], [docs.docs_kb, chat.chatbot], queue=False)

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
            *docs_view(services, name),
        )

    docs.new_kb_btn.click(on_new_kb, [docs.new_kb],
                          [docs.kb_msg, docs.docs_kb, chat.kb_dd, docs.new_kb, docs.docs_table, docs.del_doc], queue=False)
