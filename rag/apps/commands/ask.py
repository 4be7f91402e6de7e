"""`rag ask "问题"`: stream an answer from the knowledge base, then its numbered, checked sources."""

from __future__ import annotations

import argparse
import json
import sys

from rag.apps.commands import add_common, resolve_config
from rag.config import RETRIEVE_MODES
from rag.text.markers import canonical


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ask",
        help="answer a question with checked citations",
        description="Answer a question from the knowledge base. The answer streams as it is generated; "
        "then the checked answer (unsupported citations removed, converted to the question's script) "
        "and its numbered sources with the exact quoted sentence and its position in the original file.",
        epilog='examples:\n  rag ask "安达市委实施了哪些措施？"\n  rag ask "安達市委哪一年成立了領導小組？" --llm extractive --json\n'
        '  rag ask "它们是哪一年成立的？" --history "东北网报道了哪些单位？"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common(p)
    p.add_argument("question", help="the question (Chinese, simplified or traditional, or English)")
    p.add_argument("--llm", choices=["local", "openai", "extractive", "fake"], help="answer backend (default: llm.backend)")
    p.add_argument("--model", help="model (local: qwen2.5-1.5b | qwen2.5-0.5b; openai: the served model name)")
    p.add_argument("-k", "--k", type=int, metavar="N", help="passages to retrieve (default: retrieve.k)")
    p.add_argument("--mode", choices=RETRIEVE_MODES, help="retrieval mode (default: retrieve.mode)")
    p.add_argument("--history", action="append", metavar="QUESTION",
                   help="an earlier question of the conversation (repeatable, oldest first) — the question is then a follow-up")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    p.set_defaults(func=run)


def format_sources(answer) -> list[str]:
    """Numbered source lines for the terminal (supported citations only; the same passage
    sentence once)."""
    lines: list[str] = []
    seen: set[tuple] = set()
    for c in answer.citations:
        if not c.supported:
            continue
        key = (c.n, c.quote_start, c.quote_end)
        if key in seen:
            continue
        seen.add(key)
        head = " › ".join(x for x in (c.title, *c.section) if x)
        date = str(c.metadata.get("date") or "")[:10]
        pub = str(c.metadata.get("source_name") or "")
        meta = "，".join(x for x in (date, f"来源：{pub}" if pub else "", f"{c.source or c.doc_id} {c.quote_start}–{c.quote_end}") if x)
        quote = " ".join(c.quote.split())
        lines.append(f"{canonical([c.n])}{head}（{meta}）")
        lines.append(f"     “{quote}”  support {c.support:.2f}")
    return lines


def checked_text(answer) -> str:
    """The checked answer for the terminal: each unverified statement is followed by
    "⚠未核实" and what the documents lack; verified ones keep their 【n】.

    >>> from rag.types import Answer, Claim
    >>> a = Answer("问", "甲是一【1】。乙成立于2003年。", (), False, (), {}, "m",
    ...            claims=(Claim("甲是一", 0, 3, "verified", (1,)), Claim("乙成立于2003年", 7, 16, "unverified", (), ("2003年",))))
    >>> checked_text(a)
    '甲是一【1】。乙成立于2003年⚠未核实（资料中没有：2003年）。'
    """
    from rag.cite.segments import claim_segments

    if not answer.claims:
        return answer.text
    out: list[str] = []
    for seg in claim_segments(answer):
        out.append(seg.text)
        if seg.unverified:
            missing = "、".join(seg.claim.missing)
            out.append("⚠未核实" + (f"（资料中没有：{missing}）" if missing else ""))
    return "".join(out)


def run(args: argparse.Namespace) -> int:
    from rag.answer.assistant import Assistant, answer_language, answer_to_json, to_answer_script
    from rag.errors import RagError
    from rag.types import Final, Status, Token

    cfg = resolve_config(
        args,
        retrieve={"k": args.k, "mode": args.mode},
        llm={"backend": args.llm, "model": args.model},
    )
    assistant = Assistant.open(cfg.paths.kb, cfg)
    history = [(q, "") for q in (args.history or [])]
    events = assistant.ask(args.question, history, llm_backend=args.llm, k=args.k, mode=args.mode)
    if args.json:
        final = next(ev.answer for ev in events if isinstance(ev, Final))
        print(json.dumps(answer_to_json(final), ensure_ascii=False, indent=2))
        return 0
    lang = answer_language(args.question)
    out = sys.stdout
    err = sys.stderr
    streamed: list[str] = []
    final = None
    try:
        for ev in events:
            if isinstance(ev, Status) and ev.stage in ("condense", "retrieve") and err.isatty():
                print(f"… {ev.message}", file=err, flush=True)
            elif isinstance(ev, Token):
                piece = to_answer_script(ev.text, lang)  # show the user's script while streaming
                streamed.append(piece)
                out.write(piece)
                out.flush()
            elif isinstance(ev, Final):
                final = ev.answer
    except RagError as e:
        if not streamed:
            raise
        # the draft printed so far is no answer: end its line and say so in the one error line
        out.write("\n")
        out.flush()
        raise RagError(f"{e} (the text above is unfinished and unchecked: not an answer)") from None
    assert final is not None
    out.write("\n")
    from rag.cite.segments import understood_as

    if understood_as(final):
        print(f"\n理解为：{understood_as(final)}", file=out)
    unverified = any(not c.verified for c in final.claims)
    if unverified or "".join(streamed).strip() != final.text.strip():
        # citations were removed, the text changed in checking, or statements could not be
        # verified: the checked text is the answer
        print(f"\n核对后的回答：\n{checked_text(final)}", file=out)
    if final.refused:
        if final.hits:
            print("\n最接近的段落：", file=out)
            for i, h in enumerate(final.hits, 1):
                snippet = " ".join(h.chunk.text.split())[:80]
                print(f"{canonical([i])}{h.chunk.heading}\n     {snippet}…", file=out)
    else:
        lines = format_sources(final)
        if lines:
            print("\n来源：", file=out)
            print("\n".join(lines), file=out)
        if not final.grounded:
            print("\n注意：回答中没有经过核实的引用，请勿直接引用。", file=out)
        elif unverified:
            n = sum(1 for c in final.claims if not c.verified)
            print(f"\n注意：有 {n} 处陈述未能在资料中核实（⚠未核实），请勿直接引用。", file=out)
    t = final.timings
    print(
        f"\n[{final.model} · 检索 {t.get('retrieve', 0):.2f}s · 首字 {t.get('first_token', 0):.2f}s · 共 {t.get('total', 0):.2f}s]",
        file=err,
    )
    return 0
