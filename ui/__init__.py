"""The web chat (Gradio): `ui.app.build_app(cfg)` / `ui.app.serve(cfg)`; pure HTML rendering in
`ui.render`; answer feedback in `ui.feedback`. Started by `rag chat`."""
