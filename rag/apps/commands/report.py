"""`rag report QUESTIONS_FILE -o report.md|.html|.docx`: answer a list of questions into a
document with footnote-style numbered sources, ready to paste into a report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.apps.commands import add_common, resolve_config
from rag.config import RETRIEVE_MODES
from rag.errors import RagError


def read_questions(path: str | Path) -> list[str]:
    """One question per line (blank lines and `#` comments skipped), or JSONL rows with a
    "question" (or "text") field; the two may not be mixed within a line."""
    p = Path(path)
    if not p.is_file():
        raise RagError(f"{p}: questions file not found")
    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise RagError(f"{p}: not UTF-8 text; save the questions file as UTF-8") from None
    out: list[str] = []
    for i, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("{"):
            try:
                row = json.loads(s)
            except json.JSONDecodeError as e:
                raise RagError(f"{p}:{i}: not valid JSON ({e.msg})") from None
            q = row.get("question") or row.get("text") if isinstance(row, dict) else None
            if not isinstance(q, str) or not q.strip():
                raise RagError(f'{p}:{i}: a JSON line needs a "question" field')
            out.append(q.strip())
        else:
            out.append(s)
    if not out:
        raise RagError(f"{p}: no questions found (one per line, or JSONL with \"question\")")
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="answer a list of questions into a Markdown/HTML/DOCX report with numbered sources",
        description="Answer every question of QUESTIONS_FILE (one per line, or JSONL with \"question\") and write "
        "a report whose numbered sources name document, section, date, publisher, position and the quoted sentence.",
    )
    add_common(p)
    p.add_argument("questions", metavar="QUESTIONS_FILE")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="report file: .md, .html or .docx")
    p.add_argument("--llm", choices=["local", "openai", "extractive", "fake"], help="answer backend (default: llm.backend)")
    p.add_argument("--model", help="model name (local: qwen2.5-1.5b | qwen2.5-0.5b)")
    p.add_argument("-k", "--k", type=int, metavar="N", help="passages to retrieve")
    p.add_argument("--mode", choices=RETRIEVE_MODES, help="retrieval mode")
    p.add_argument("--title", default="问答报告", help="report title")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rag.answer.assistant import Assistant
    from rag.cite.report import write_report

    out = Path(args.output)
    if out.suffix.lower() not in (".md", ".markdown", ".html", ".htm", ".docx"):
        raise RagError(f"{out}: unknown report format; use a .md, .html or .docx file name")
    questions = read_questions(args.questions)
    cfg = resolve_config(args, retrieve={"k": args.k, "mode": args.mode}, llm={"backend": args.llm, "model": args.model})
    assistant = Assistant.open(cfg.paths.kb, cfg)
    answers = []
    for i, q in enumerate(questions, 1):
        print(f"[{i}/{len(questions)}] {q}", file=sys.stderr, flush=True)
        answers.append(assistant.answer(q, llm_backend=args.llm, k=args.k, mode=args.mode))
    write_report(answers, out, title=args.title)
    n_ref = sum(a.refused for a in answers)
    print(f"wrote {out} ({len(answers)} questions, {n_ref} without an answer in the documents)")
    return 0
