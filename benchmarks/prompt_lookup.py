"""Prompt-lookup decoding (llama-cpp-python's LlamaPromptLookupDecoding) vs plain decoding,
on the answer prompts users' questions produce: the faster-decode item of the latency issue.

    python3 benchmarks/prompt_lookup.py [--n 8] [--model qwen2.5-1.5b] [--npred 10]
                                        [--out benchmarks/results/prompt_lookup.md]

Both Llama objects get the same seed questions' real prompts (rag.answer.assistant.Assistant.retrieve +
rag.answer.prompts.answer_messages at the local evidence budget) on the llama.cpp build rag.llm.kernels
chose, one after the other per question. Acceptance rate = accepted draft tokens / proposed
draft tokens, where accepted = generated tokens after the first − verification steps. A request
that fails (llama-cpp-python's speculative path can overflow its logits buffer) is recorded.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import load_config  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--model", default="qwen2.5-1.5b")
    ap.add_argument("--npred", type=int, default=10, help="draft tokens proposed per step")
    ap.add_argument("--evalset", default="evalsets/seeds")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/prompt_lookup.md"))
    args = ap.parse_args()
    cfg = load_config()
    from rag.llm.kernels import activate

    kern = activate(cfg.llm.kernels, cfg.paths.models_dir)
    import llama_cpp
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    from rag.answer.assistant import Assistant
    from rag.evaluate.evalsets import load_beir
    from rag.index.kb import KnowledgeBase
    from rag.llm.install import model_path
    from rag.answer.prompts import answer_messages

    class Counting(LlamaPromptLookupDecoding):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.calls = self.proposed = 0

        def __call__(self, ids, **kw):
            out = super().__call__(ids, **kw)
            self.calls += 1
            self.proposed += len(out)
            return out

    la0 = os.getloadavg()
    c = dataclasses.replace(cfg)
    c.llm = dataclasses.replace(cfg.llm, backend="local", model=args.model)
    a = Assistant(KnowledgeBase.open(cfg.paths.kb, cfg), c)
    es = load_beir(args.evalset)
    ids = sorted(q for q in es.queries if not es.answers.get(q, {}).get("follow_up_of"))
    ids = ids[:: max(1, len(ids) // args.n)][: args.n]
    path = str(model_path(args.model, cfg.paths.models_dir))
    n = os.cpu_count() or 1
    common = dict(model_path=path, n_ctx=cfg.llm.n_ctx, n_threads=n, n_threads_batch=n, n_batch=512, verbose=False)
    draft = Counting(num_pred_tokens=args.npred)
    llms = {"plain": llama_cpp.Llama(**common), "lookup": llama_cpp.Llama(**common, draft_model=draft)}
    res: dict[str, list[dict]] = {k: [] for k in llms}
    for qid in ids:
        q = es.queries[qid]["text"]
        ps = a.retrieve(q, k=None, mode=None, backend="local")
        (_, sysm), (_, user) = answer_messages(q, ps, "zh-Hans", cfg.answer.local_context_tokens)
        msgs = [{"role": "system", "content": sysm}, {"role": "user", "content": user}]
        for name, llm in llms.items():
            draft.calls = draft.proposed = 0
            t0 = time.perf_counter()
            first, out, err = None, [], ""
            try:
                for ch in llm.create_chat_completion(messages=msgs, temperature=0.1, max_tokens=cfg.llm.max_tokens, stream=True, seed=0):
                    d = ch["choices"][0]["delta"].get("content")
                    if d:
                        first = first or time.perf_counter()
                        out.append(d)
            except (ValueError, RuntimeError) as e:
                err = f"{type(e).__name__}: {str(e)[:80]}"
                llm.reset()
            t1 = time.perf_counter()
            ntok = len(llm.tokenize("".join(out).encode(), add_bos=False))
            r = {"id": qid, "ttft": (first or t1) - t0, "decode_s": t1 - (first or t1), "tokens": ntok,
                 "calls": draft.calls, "proposed": draft.proposed, "text": "".join(out), "error": err}
            r["tps"] = (ntok - 1) / r["decode_s"] if ntok > 1 and r["decode_s"] > 0 else 0.0
            res[name].append(r)
            print(f"{qid} {name}: ttft {r['ttft']:.2f}s {r['tps']:.1f} tok/s {ntok} tok {err}", flush=True)
    la1 = os.getloadavg()
    ok = [i for i in range(len(ids)) if not res["lookup"][i]["error"]]
    lines = [
        "# Prompt-lookup decoding vs plain decoding",
        "",
        f"Command: `python3 {' '.join(sys.argv)}` — model {args.model}, llama.cpp kernels {kern}, "
        f"{args.npred} draft tokens per step, {len(ids)} seed questions; load average {la0[0]:.2f} → {la1[0]:.2f}.",
        "",
        "| decoding | first token median (s) | decode tok/s median | decode seconds, all questions | failed requests |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, rows in res.items():
        good = [rows[i] for i in ok]
        lines.append(
            f"| {name} | {statistics.median(r['ttft'] for r in good):.2f} | {statistics.median(r['tps'] for r in good):.1f} | "
            f"{sum(r['decode_s'] for r in good):.1f} | {sum(bool(r['error']) for r in rows)} |"
        )
    look = [res["lookup"][i] for i in ok]
    acc = sum(max(0, r["tokens"] - 1 - r["calls"]) for r in look)
    prop = sum(r["proposed"] for r in look)
    same = sum(res["plain"][i]["text"] == res["lookup"][i]["text"] for i in ok)
    lines += [
        "",
        f"Acceptance rate: {acc}/{prop} draft tokens = {acc / max(1, prop):.3f}; identical answers {same}/{len(ok)} "
        "(the medians and sums are over the questions both completed).",
        "",
        "Per question: " + "; ".join(
            f"{res['plain'][i]['id']} {res['plain'][i]['tps']:.1f} vs {res['lookup'][i]['tps']:.1f} tok/s"
            + (f" (lookup failed: {res['lookup'][i]['error']})" if res["lookup"][i]["error"] else "")
            for i in range(len(ids))
        ),
        "",
    ]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
