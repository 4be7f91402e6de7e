"""Local LLM speed and a small answer-quality trial, per installed GGUF model.

    nice python3 benchmarks/llm_speed.py [--models qwen2.5-0.5b,qwen2.5-1.5b] [--repeats 3]
                                         [--kernels auto,portable] [--out benchmarks/results/llm.md]

`--kernels auto,portable` measures each model on the llama.cpp build chosen for this CPU
(rag.llm.kernels) and on pip's portable build, in one run: llama.cpp's libraries are fixed per
process, so each (model, build) pair runs in a child process of its own, one after the other,
and the report gives the fast/portable ratios (the figure that survives a noisy machine).

Speed: for each model, `--repeats` rounds of
- load: a fresh `llama_cpp.Llama` (the file is in the page cache after the first round);
- cold: first request on the fresh object: fixed system prompt + ≈1,200 model tokens of
  Chinese evidence from seeds/ + a question — nothing is cached;
- warm_system: same system prompt, *different* evidence and question — only the system
  prompt's KV is reused (the typical next question);
- warm_evidence: same evidence, different question — the whole evidence is reused (a
  follow-up on the same passages);
- compact: a compact prompt (≈450 evidence tokens), system prompt cached — what a ≤3 s first
  token needs;
- after_condense: a follow-up-rewrite prompt runs first (another system prompt), then a compact
  answer prompt — the case where the single KV sequence has been overwritten.
Each request streams through the project's LangChain model (`rag.llm.backends.LocalChatModel`), so the
numbers include the real code path. Prompt tokens are counted with the model's own tokenizer;
prompt tokens/s = newly evaluated prompt tokens / time to first token; decode tokens/s =
(completion tokens − 1) / (total − time to first token).

Quality: 5 Chinese factual questions (simplified and traditional), each with 3 evidence
passages from the seeds (one holds the answer, two are distractors from other documents), plus
one question the passages cannot answer; the answers are recorded verbatim with a
key-phrase check (script-normalised containment of the expected facts).

The machine is shared (2 cores, several other jobs): every figure is a median over repeats with
the min–max range, and the load average is recorded.
"""

from __future__ import annotations

import argparse
import os
import platform
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import load_average  # noqa: E402 - benchmarks/ is on sys.path (the script's folder)
from rag.config import LLMConfig, load_config  # noqa: E402
from rag.types import Chunk, Hit  # noqa: E402

SEEDS = ROOT / "seeds"


# ------------------------------------------------------------------------------------ prompts


def _paragraphs(path: Path, min_chars: int = 80) -> list[str]:
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    return [ln for ln in lines if len(ln) >= min_chars]


def _passage(n: int, title: str, text: str, doc: str = "bench"):
    from rag.types import Passage

    ch = Chunk(chunk_id=f"{doc}#{n}", doc_id=doc, n=n, title=title, section=(), text=text, start=0, end=len(text))
    return Passage.from_hit(n, Hit(ch, 1.0 / n, n))


def answer_messages(question: str, passages: list[tuple[str, str]]):
    """The project's answer prompt (rag.answer.prompts) over (title, text) passages."""
    from rag.answer.prompts import answer_messages as am, to_langchain
    from rag.text.norm import detect_script

    ps = [_passage(i + 1, t, x) for i, (t, x) in enumerate(passages)]
    lang = detect_script(question) if any("\u4e00" <= c <= "\u9fff" for c in question) else "en"
    return to_langchain(am(question, ps, lang if lang in ("zh-Hans", "zh-Hant") else "zh-Hans"))


# An alternative, minimal prompt for comparison in the answer trial: a concrete format example
# instead of abstract rules (small models copy an abstract "【1】" example literally).
PLAIN_SYSTEM = (
    "你是文档问答助手。根据资料回答问题，每句话末尾用【n】注明依据的资料编号。"
    "格式示例：该市共有党员120人【1】，其中女性党员45人【3】。"
    "资料中没有答案时回答：根据现有资料无法回答该问题。"
)


def plain_messages(question: str, passages: list[tuple[str, str]]):
    from langchain_core.messages import HumanMessage, SystemMessage

    ev = "\n\n".join(f"【{i + 1}】{t}\n{x}" for i, (t, x) in enumerate(passages))
    return [SystemMessage(PLAIN_SYSTEM), HumanMessage(f"资料：\n{ev}\n\n问题：{question}")]


PROMPTS = {"project": answer_messages, "plain": plain_messages}


def condense_messages(question: str, history: list[tuple[str, str]]):
    from rag.answer.condense import condense_messages as cm
    from rag.answer.entities import conversation_entity
    from rag.answer.prompts import to_langchain

    earlier = [q for q, _ in history]
    return to_langchain(cm(question, earlier, conversation_entity(earlier, question)))


def evidence(llm, files: list[str], target_tokens: int, per_passage: int = 260) -> list[tuple[str, str]]:
    """(title, text) passages of about `per_passage` model tokens each, `target_tokens` in all."""
    out: list[tuple[str, str]] = []
    total = 0
    for f in files:
        path = next(SEEDS.glob(f"{f}*.txt"))
        title = path.read_text(encoding="utf-8").splitlines()[0].strip()[:40]
        buf = ""
        for para in _paragraphs(path):
            buf += para
            toks = llm.tokenize(buf.encode("utf-8"), add_bos=False)
            if len(toks) >= per_passage:
                want = min(per_passage, target_tokens - total)
                text = llm.detokenize(toks[:want]).decode("utf-8", errors="ignore")
                out.append((title, text))
                total += want
                buf = ""
                if total >= target_tokens:
                    return out
    return out


def n_tokens(llm, messages) -> int:
    """Tokens of the ChatML rendering (Qwen2.5's template) of `messages`."""
    role = {"system": "system", "human": "user", "ai": "assistant"}
    text = "".join(f"<|im_start|>{role[m.type]}\n{m.content}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"
    return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))


# ------------------------------------------------------------------------------------ speed


def run_request(model, llm, messages, max_tokens: int) -> dict[str, float]:
    before = list(llm._input_ids)  # tokens in the KV cache before the call
    prompt = n_tokens(llm, messages)
    # the prefix llama.cpp can reuse: common prefix of cached tokens and the new prompt
    role = {"system": "system", "human": "user", "ai": "assistant"}
    text = "".join(f"<|im_start|>{role[m.type]}\n{m.content}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"
    new_toks = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    reused = 0
    for a, b in zip(before, new_toks):
        if a != b:
            break
        reused += 1
    t0 = time.perf_counter()
    first = None
    out = []
    for chunk in model.stream(messages, max_tokens=max_tokens):
        if chunk.content and first is None:
            first = time.perf_counter() - t0
        out.append(chunk.content)
    total = time.perf_counter() - t0
    completion = max(1, llm.n_tokens - prompt)
    first = first if first is not None else total
    evaluated = max(1, prompt - reused)
    return {
        "prompt_tokens": prompt,
        "reused_tokens": reused,
        "completion_tokens": completion,
        "ttft": first,
        "total": total,
        "prompt_tps": evaluated / first if first > 0 else 0.0,
        "decode_tps": (completion - 1) / (total - first) if total > first and completion > 1 else 0.0,
        "text": "".join(out),
    }


def speed(name: str, models_dir: str, repeats: int, max_tokens: int, n_threads: int, kernels: str = "auto") -> dict:
    from rag.llm import backends as rl
    from rag.llm.kernels import running

    cfg = LLMConfig(backend="local", model=name, n_threads=n_threads, kernels=kernels)
    rounds: dict[str, list[dict]] = {}
    loads: list[float] = []
    questions = [
        "文件对党员提出了哪些要求？",
        "这些单位开展活动的主要做法有哪些？",
        "活动分为哪几个阶段？",
        "其中提到的主题是什么？",
    ]
    for r in range(repeats):
        rl.unload_all()
        model = rl.get_chat_model(cfg, models_dir)
        t0 = time.perf_counter()
        llm, _lock = rl.load_llama(model.model_path, model.n_ctx, model.n_threads, kernels=kernels)
        loads.append(time.perf_counter() - t0)
        ev_a = evidence(llm, ["002", "003"], 1200)
        ev_b = evidence(llm, ["004", "000"], 1200)
        ev_c = evidence(llm, ["001"], 450, per_passage=150)
        ev_d = evidence(llm, ["003", "002"], 450, per_passage=150)
        scenarios = [
            ("cold", answer_messages(questions[0], ev_a)),
            ("warm_system", answer_messages(questions[1], ev_b)),
            ("warm_evidence", answer_messages(questions[2], ev_b)),
            ("compact", answer_messages(questions[3], ev_c)),
        ]
        for key, msgs in scenarios:
            rounds.setdefault(key, []).append(run_request(model, llm, msgs, max_tokens))
        # a condense call overwrites the single KV sequence, then a compact answer follows
        run_request(model, llm, condense_messages("它是哪一年开始的？", [("创先争优活动是什么？", "创先争优活动是……【1】")]), 24)
        rounds.setdefault("after_condense", []).append(run_request(model, llm, answer_messages(questions[0], ev_d), max_tokens))
        print(f"  {name} round {r + 1}: " + ", ".join(f"{k} ttft {v[-1]['ttft']:.2f}s" for k, v in rounds.items()), flush=True)
    rl.unload_all()
    return {"load": loads, "rounds": rounds, "kernels": running()}


def speed_in_child(name: str, kernels: str, args) -> dict:
    """`speed` in a child process on the `kernels` build (see the module docstring)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    try:
        la0 = os.getloadavg()
        subprocess.run([sys.executable, __file__, "--worker", f"{name}@{kernels}", "--worker-out", str(out),
                        "--repeats", str(args.repeats), "--max-tokens", str(args.max_tokens), "--threads", str(args.threads)],
                       check=True)
        res = json.loads(out.read_text(encoding="utf-8"))
    finally:
        out.unlink(missing_ok=True)
    res["loadavg"] = [la0, os.getloadavg()]
    return res


def ratio_lines(results: dict) -> list[str]:
    """Per model and scenario: the chosen build's tokens/s over the portable build's (medians)."""
    out = []
    for key, res in results.items():
        name, _, k = key.partition(" @ ")
        base = results.get(f"{name} @ portable")
        if k == "portable" or base is None:
            continue
        if not out:
            out = ["## Chosen build vs portable build (ratio of median tokens/s)", "",
                   "| model | build | scenario | prompt tok/s ratio | decode tok/s ratio |", "| --- | --- | --- | ---: | ---: |"]
        for sc, rs in res["rounds"].items():
            med = lambda rows, f: statistics.median(r[f] for r in rows)  # noqa: E731
            b = base["rounds"].get(sc)
            if not b:
                continue
            pr = med(rs, "prompt_tps") / max(1e-9, med(b, "prompt_tps"))
            dr = med(rs, "decode_tps") / max(1e-9, med(b, "decode_tps"))
            out.append(f"| {name} | {res.get('kernels', k)} | {sc} | {pr:.2f}× | {dr:.2f}× |")
    return out + [""] if out else []


# ------------------------------------------------------------------------------------ quality

# (question, file prefix, anchor locating the answering paragraph, expected key phrases)
QUALITY = [
    ("******区财政局现有干部职工多少人？其中党员多少人？", "003", "现有干部职工", ["68", "32"]),
    ("中央确定哪一年为基层组织建设年？", "004", "中央确定2012年", ["2012"]),
    ("安達市委建設學習型黨組織以什麼為主題？", "000", "為主題", ["解放思想", "敢創大業"]),
    ("天津市創先爭優活動的主題是什麼？", "001", "打造新濱海", ["打造新濱海", "建設新天津", "實現新跨越"]),
    ("甘肃煤田地质局“党性教育”活动中的“三个一”指什么？", "002", "“三个一”即", ["入党誓词", "党课"]),
]
UNANSWERABLE = ("甘肃煤田地质局2010年的煤炭产量是多少吨？", ["002", "004"], "根据现有资料无法回答")


def _para_with(prefix: str, anchor: str) -> tuple[str, str]:
    path = next(SEEDS.glob(f"{prefix}*.txt"))
    title = path.read_text(encoding="utf-8").splitlines()[0].strip()[:40]
    for para in _paragraphs(path, 20):
        if anchor in para:
            return title, para[:600]
    raise SystemExit(f"benchmark fixture: anchor {anchor!r} not found in {path.name}")


def _distractors(exclude: str, k: int = 2) -> list[tuple[str, str]]:
    out = []
    for path in sorted(SEEDS.glob("*.txt")):
        if path.name.startswith(exclude):
            continue
        title = path.read_text(encoding="utf-8").splitlines()[0].strip()[:40]
        paras = _paragraphs(path, 120)
        if paras:
            out.append((title, paras[len(paras) // 2][:400]))
        if len(out) == k:
            break
    return out


def quality(name: str, models_dir: str, n_threads: int, prompt: str = "project") -> list[dict]:
    from rag.llm import backends as rl
    from rag.text.norm import normalize

    model = rl.get_chat_model(LLMConfig(backend="local", model=name, n_threads=n_threads, max_tokens=160), models_dir)
    llm, _ = rl.load_llama(model.model_path, model.n_ctx, model.n_threads)
    rows = []
    for i, (q, prefix, anchor, keys) in enumerate(QUALITY):
        passages = _distractors(prefix)
        passages.insert(i % 3, _para_with(prefix, anchor))  # the answer is not always 【1】
        r = run_request(model, llm, PROMPTS[prompt](q, passages), 160)
        ok = all(normalize(k) in normalize(r["text"]) for k in keys)
        rows.append({"q": q, "answer": r["text"].strip(), "ok": ok, "ttft": r["ttft"], "total": r["total"], "gold": i % 3 + 1})
    q, prefixes, key = UNANSWERABLE
    passages = [_distractors(p, 1)[0] for p in prefixes] + [_para_with("002", "“三个一”即")]
    r = run_request(model, llm, PROMPTS[prompt](q, passages), 160)
    rows.append({"q": q + "（不可回答）", "answer": r["text"].strip(), "ok": key in normalize(r["text"]), "ttft": r["ttft"], "total": r["total"], "gold": None})
    return rows


# ------------------------------------------------------------------------------------ report


def _fmt(xs: list[float], unit: str = "s", nd: int = 2) -> str:
    if not xs:
        return "-"
    med = statistics.median(xs)
    return f"{med:.{nd}f}{unit} ({min(xs):.{nd}f}–{max(xs):.{nd}f})" if len(xs) > 1 else f"{med:.{nd}f}{unit}"


def render(results: dict, quals: dict, args, cmd: str, loadavg: tuple) -> str:
    from rag.llm.install import MODELS

    lines = [
        "# Local LLM speed and answer trial",
        "",
        f"Command: `{cmd}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs; load average before/after: "
        f"{loadavg[0]} / {loadavg[1]}; llama-cpp-python {_llama_version()}; n_threads={args.threads or os.cpu_count()}, "
        f"n_batch 512, max_tokens {args.max_tokens}; {args.repeats} repeats: median (min–max).",
        "",
        "Scenarios: **cold** = first request on a freshly loaded model, ≈1,200 evidence tokens; **warm_system** = next "
        "question with different evidence (only the fixed system prompt is reused from the KV cache); **warm_evidence** = "
        "a follow-up over the same evidence (system + evidence reused); **compact** = ≈450 evidence tokens, system prompt "
        "cached; **after_condense** = a compact answer right after a follow-up-rewrite call (different system prompt).",
        "",
    ]
    lines += ratio_lines(results)
    for key, res in results.items():
        name, _, k = key.partition(" @ ")
        spec = MODELS[name]
        la = res.get("loadavg")
        where = f"llama.cpp kernels: {res.get('kernels') or k}" + (
            f"; load average {la[0][0]:.2f} → {la[1][0]:.2f}" if la else "")
        lines += [f"## {key} — {spec.description}", "", f"Load: {_fmt(res['load'])}; {where}", ""]
        lines += ["| scenario | prompt tok | reused | TTFT | total | prompt tok/s | decode tok/s |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for key, rs in res["rounds"].items():
            lines.append(
                f"| {key} | {rs[0]['prompt_tokens']} | {rs[0]['reused_tokens']} | {_fmt([r['ttft'] for r in rs])} | "
                f"{_fmt([r['total'] for r in rs])} | {_fmt([r['prompt_tps'] for r in rs], '', 0)} | "
                f"{_fmt([r['decode_tps'] for r in rs], '', 1)} |"
            )
        lines.append("")
    if quals:
        from rag.answer.prompts import PROMPT_VERSION

        lines += ["## Answer trial", "", f"Prompts: **project** = `rag.answer.prompts.answer_messages` ({PROMPT_VERSION}, the answer "
                  "stage's prompt); **plain** = a minimal prompt with a concrete citation example (`PLAIN_SYSTEM` in this "
                  "script). Temperature 0.1 (the default), max 160 tokens. Each question gets 3 evidence passages (one answers it, two are distractors from other "
                  "seed documents; the answering one is 【gold】); the last question is unanswerable from its passages. "
                  "✓ = all expected facts present (script-normalised) / refusal given.", ""]
        names = list(quals)
        lines += ["| model | correct | median TTFT | median total |", "| --- | ---: | ---: | ---: |"]
        for n in names:
            rows = quals[n]
            lines.append(f"| {n} | {sum(r['ok'] for r in rows)}/{len(rows)} | {_fmt([r['ttft'] for r in rows])} | {_fmt([r['total'] for r in rows])} |")
        lines.append("")
        for i, r0 in enumerate(quals[names[0]]):
            gold = f" (gold 【{r0['gold']}】)" if r0["gold"] else ""
            lines += [f"**Q{i + 1}. {r0['q']}**{gold}", ""]
            for n in names:
                r = quals[n][i]
                ans = r["answer"].replace("\n", " ")
                lines.append(f"- {n} {'✓' if r['ok'] else '✗'} ({r['total']:.1f}s): {ans}")
            lines.append("")
    return "\n".join(lines) + "\n"


def _llama_version() -> str:
    try:
        import llama_cpp

        return llama_cpp.__version__
    except ImportError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    from rag.llm.install import MODELS, is_installed

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="", help="comma-separated model names (default: every installed one)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=48, help="completion tokens per speed request")
    ap.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0 = all cores)")
    ap.add_argument("--no-quality", action="store_true")
    ap.add_argument("--prompts", default="project,plain", help="answer-trial prompts: project (rag.answer.prompts), plain")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--kernels", default="auto,portable", help="llama.cpp builds to measure (rag.llm.kernels): auto, portable")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "llm.md"))
    ap.add_argument("--worker", default="", help=argparse.SUPPRESS)  # child: MODEL@KERNELS
    ap.add_argument("--worker-out", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    cfg = load_config()
    models_dir = cfg.paths.models_dir
    if args.worker:
        name, _, kernels = args.worker.partition("@")
        res = speed(name, models_dir, args.repeats, args.max_tokens, args.threads, kernels)
        Path(args.worker_out).write_text(json.dumps(res, ensure_ascii=False), encoding="utf-8")
        return 0
    names = [n.strip() for n in args.models.split(",") if n.strip()] or [n for n in MODELS if is_installed(n, models_dir)]
    if not names:
        print("no local model installed: run `rag models install`", file=sys.stderr)
        return 2
    la0 = load_average()
    results, quals = {}, {}
    cmd = "nice python3 benchmarks/llm_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])

    def write(final: bool) -> str:
        # written after every stage: on a busy shared machine a long run still leaves results
        la1 = load_average() + ("" if final else " (run incomplete)")
        text = render(results, quals, args, cmd.strip(), (la0, la1))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        return text

    # the answer trial first: it is what the choice of the default model rests on
    if not args.no_quality:
        for prompt in [p.strip() for p in args.prompts.split(",") if p.strip()]:
            for name in names:
                print(f"{name}: answer trial, {prompt} prompt", flush=True)
                quals[f"{name} / {prompt}"] = quality(name, models_dir, args.threads, prompt)
                write(False)
    for name in [] if args.no_speed else names:
        for kernels in [k.strip() for k in args.kernels.split(",") if k.strip()]:
            print(f"{name} @ {kernels}: speed", flush=True)
            results[f"{name} @ {kernels}"] = speed_in_child(name, kernels, args)
            write(False)
    print(write(True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
