"""Follow-up condensing on the seed set: the heuristic and the model-with-check condenser of
rag.answer.condense, beside the previous implementation (rag.answer.extractive.condense_heuristic, and the old
model prompt rag.answer.prompts.condense_messages used without a check).

    python3 benchmarks/condense.py [--llm local:qwen2.5-1.5b] [--llm local:qwen2.5-0.5b]
                                   [--no-baseline] [--out benchmarks/results/condense]

Items: every row of evalsets/seeds/queries.jsonl with metadata.follow_up_of. The conversation is
the chain of earlier turns named there, followed recursively (oldest first), as the user typed
them; answers are left empty (what our system answered is not part of the set).

Measures, per method:
- entity kept: the share of rewrites that contain the earlier turn's entity whole. The entity is
  computed, not annotated: what the `standalone` reference and the earlier question (the one
  named by follow_up_of) share — their longest common substring, of at least 2 characters, of
  the normalised texts (rag.text.norm.normalize: simplified, NFKC, lower-case; punctuation
  removed) after cutting both at question and filler words (rag.answer.extractive's word lists: 什么,
  多少, 哪, 现在, the, in, …), so it is never a question word. Items where nothing of 2+
  characters is shared are left out of this share (the count is reported).
- ≈ standalone: the mean character F1 (rag.evaluate.metrics.char_f1, CMRC style) of the rewrite
  against `standalone`, and the share with F1 ≥ 0.8; exact = equal after normalisation.
- time per rewrite: median and max over the items (the first model call also evaluates the fixed
  few-shot system prompt; later ones reuse it from the condense slot's KV cache), and the load
  average, since the machine is shared.
These questions are the measurement: rag.answer.condense's rules and examples were written on
hand-made fixtures (tests/test_condense.py), not tuned here.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.evaluate.metrics import char_f1  # noqa: E402
from rag.text.norm import normalize, normalize_answer  # noqa: E402

SET = ROOT / "evalsets" / "seeds" / "queries.jsonl"


def load_items(path: Path = SET) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_id = {r["_id"]: r for r in rows}
    items = []
    for r in rows:
        md = r["metadata"]
        if not md.get("follow_up_of"):
            continue
        chain, cur = [], md["follow_up_of"]
        while cur and cur in by_id and len(chain) < 10:
            chain.insert(0, by_id[cur]["text"])
            cur = by_id[cur]["metadata"].get("follow_up_of")
        earlier = by_id[md["follow_up_of"]]["text"]
        items.append(dict(id=r["_id"], question=r["text"], history=chain, standalone=md["standalone"], entity=shared_entity(md["standalone"], earlier)))
    return items


def _cut(text: str, sep: str) -> str:
    """Normalised text with question/filler words and punctuation replaced by `sep`."""
    import jieba

    from rag.answer.scoring import FILLER, QUESTION_WORDS

    words = set(QUESTION_WORDS) | set(FILLER)
    out = []
    for w in jieba.lcut(normalize(text)):
        out.append(w if w == " " or (w.strip() and w.strip() not in words and re.search(r"\w", w)) else sep)
    return "".join(out)


def shared_entity(standalone: str, earlier: str) -> str:
    """The entity rule of the module docstring ("" when nothing of 2+ characters is shared)."""
    a, b = _cut(standalone, "\x00"), _cut(earlier, "\x01")
    m = difflib.SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    ent = a[m.a : m.a + m.size].strip()
    return ent if len(normalize_answer(ent)) >= 2 else ""


# ------------------------------------------------------------------------------ methods


def run_method(name: str, fn, items: list[dict]) -> dict:
    rows, times = [], []
    for it in items:
        hist = [(q, "") for q in it["history"]]
        t0 = time.perf_counter()
        out = fn(it["question"], hist)
        times.append(time.perf_counter() - t0)
        text, how = (out.text, out.method) if hasattr(out, "method") else (out, "")
        ent = it["entity"]
        rows.append(dict(
            id=it["id"], rewrite=text, method=how, seconds=round(times[-1], 3),
            entity_kept=(normalize_answer(ent) in normalize_answer(text)) if ent else None,
            f1=round(char_f1(text, it["standalone"]), 3),
            exact=normalize_answer(text) == normalize_answer(it["standalone"]),
        ))
        print(f"  [{name}] {it['id']} {it['question']} -> {text} ({how}) F1 {rows[-1]['f1']} {times[-1]:.1f}s", flush=True)
    judged = [r for r in rows if r["entity_kept"] is not None]
    return dict(
        name=name, n=len(rows), rows=rows,
        entity_kept=sum(r["entity_kept"] for r in judged) / max(1, len(judged)), entity_judged=len(judged),
        f1_mean=statistics.mean(r["f1"] for r in rows), f1_ge_08=sum(r["f1"] >= 0.8 for r in rows) / len(rows),
        exact=sum(r["exact"] for r in rows) / len(rows),
        model_accepted=sum(r["method"] == "model" for r in rows) / len(rows),
        seconds_median=statistics.median(times), seconds_max=max(times), seconds_first=times[0],
    )


def load_model(spec: str):
    from rag.config import LLMConfig, load_config
    from rag.llm.backends import get_chat_model

    kind, _, name = spec.partition(":")
    cfg = load_config()
    llm_cfg = LLMConfig(backend=kind, model=name or cfg.llm.model, n_ctx=cfg.llm.n_ctx, n_threads=cfg.llm.n_threads, max_tokens=64, temperature=0.0)
    return get_chat_model(llm_cfg, cfg.paths.models_dir, slot="condense")


# ------------------------------------------------------------------------------ report


def write_report(out: Path, results: list[dict], items: list[dict], meta: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(dict(meta=meta, items=items, results=results), ensure_ascii=False, indent=1), encoding="utf-8")
    lines = [
        "# Follow-up condensing (rag.answer.condense)", "",
        f"Command: `{meta['command']}` — {meta['n']} follow-up questions of evalsets/seeds (every row with "
        f"`follow_up_of`); {meta['machine']}; load average {meta['load_start']:.1f} at start, {meta['load_end']:.1f} at end "
        "(shared machine: times are upper bounds). Entity rule and metrics: the docstring of benchmarks/condense.py; "
        f"the entity is computable for {results[0]['entity_judged']} of {meta['n']} items.", "",
        "| method | entity kept whole | char F1 vs standalone (mean) | F1 ≥ 0.8 | exact | model rewrite accepted | s/rewrite median | max | first call |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        acc = f"{r['model_accepted']:.2f}" if "check" in r["name"] else "–"
        lines.append(f"| {r['name']} | {r['entity_kept']:.2f} | {r['f1_mean']:.3f} | {r['f1_ge_08']:.2f} | {r['exact']:.2f} | {acc} | {r['seconds_median']:.2f} | {r['seconds_max']:.2f} | {r['seconds_first']:.2f} |")
    lines += ["", "## Per question", "", "| id | follow-up | earlier turn(s) | standalone (reference) | entity | " + " | ".join(r["name"] for r in results) + " |",
              "| --- " * (5 + len(results)) + "|"]
    for i, it in enumerate(items):
        cells = []
        for r in results:
            row = r["rows"][i]
            mark = "" if row["entity_kept"] is None else ("✓" if row["entity_kept"] else "✗")
            cells.append(f"{row['rewrite']} ({mark}{row['f1']:.2f}{', ' + row['method'] if row['method'] else ''})")
        lines.append(f"| {it['id']} | {it['question']} | {' / '.join(it['history'])} | {it['standalone']} | {it['entity'] or '–'} | " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llm", action="append", default=[], help="BACKEND:MODEL, e.g. local:qwen2.5-1.5b (repeatable)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the previous implementation")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "condense"))
    args = ap.parse_args(argv)
    load_start = os.getloadavg()[0]
    print(f"load average at start: {os.getloadavg()}", flush=True)

    from rag.answer.condense import condense
    from rag.answer.followup import condense_heuristic

    items = load_items()
    # the previous implementation (rag.answer.extractive.condense_heuristic, the old prompt without a
    # check) was removed once measured: its rows in benchmarks/results/condense.md were made with
    # it at commit de74901; --no-baseline is kept so old commands still parse
    methods = [("heuristic", condense_heuristic)]
    for spec in args.llm:
        model = load_model(spec)
        methods.append((f"{spec} + check", lambda q, h, m=model: condense(q, h, m)))
    results = [run_method(name, fn, items) for name, fn in methods]
    cmd = "python3 benchmarks/condense.py" + "".join(f" --llm {s}" for s in args.llm) + (" --no-baseline" if args.no_baseline else "")
    meta = dict(command=cmd, n=len(items), machine=f"{platform.machine()}, {os.cpu_count()} cores", load_start=load_start, load_end=os.getloadavg()[0])
    write_report(Path(args.out), results, items, meta)
    for r in results:
        print(f"{r['name']}: entity {r['entity_kept']:.2f} F1 {r['f1_mean']:.3f} F1≥0.8 {r['f1_ge_08']:.2f} accepted {r['model_accepted']:.2f} median {r['seconds_median']:.2f}s")


if __name__ == "__main__":
    main()
