"""The web chat (Gradio): `ui.app.build_app(cfg)` / `ui.app.serve(cfg)`; pure HTML rendering in
`ui.render` (the conversation) and `ui.sources` (the source panel); answer feedback in `ui.feedback`. Started by `rag chat`."""
