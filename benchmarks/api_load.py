"""Bounded load test of `rag serve` (issue 11): loopback only, starts and stops the server itself.

    python3 benchmarks/api_load.py [--clients 20] [--seconds 60] [--kb seeds]

Starts `rag serve --llm extractive` on a free 127.0.0.1 port, warms it (encoder, jieba) and,
unless `--no-warm-pass`, asks each question once: caches keyed by the question fill on first
sight (an in-process probe grew 953 → 1285 MiB over its first 400 distinct requests, then 3 MiB
over 1,200 more), and RSS is to show leaks, not that warm-up. Then it runs `--clients` concurrent clients for `--seconds` of mixed POST /ask (extractive, non-stream)
and POST /search over the seed questions, plus one client that sends only oversized bodies
(2 MiB with Content-Length, 1.25 MiB chunked without one), which must all get 413. Reports
p50/p95/max latency per kind, counts by status, the longest request against the server's
deadline, the server's RSS at start and end (and sampled in between), the load average, and how
long the server took to exit after SIGTERM. Writes `benchmarks/results/api_load.md`.

Compromises: the clients are threads of one Python process (the GIL and 2 shared cores make
latencies upper bounds); questions are cycled, so the KB's caches are warm after the first
round — this measures the server's robustness under load, not cold-query latency.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/_servers.py: the one home of starting and stopping a server
HOST = "127.0.0.1"  # loopback only, by design
SERVER_LOG = Path(tempfile.gettempdir()) / "rag_api_load_server.log"

from _common import quantile, status_kb  # noqa: E402 - benchmarks/ is on sys.path (the script's folder)
from _servers import ServerFailed, free_port, running, wait_http  # noqa: E402


def questions(limit: int = 200) -> list[str]:
    out = []
    with open(ROOT / "evalsets/seeds/queries.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if not d["metadata"].get("follow_up_of"):
                out.append(d["text"])
    return out[:limit]


def request(port: int, method: str, path: str, body: bytes | None, timeout: float,
            headers: dict | None = None, chunked: bool = False) -> tuple[int | str, float]:
    """(status or exception name, seconds). One connection per request keeps the accounting
    simple (a reset connection spoils no later request)."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        hs = {"Content-Type": "application/json", **(headers or {})}
        if chunked:
            conn.request(method, path, body=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                         headers=hs, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=hs)
        r = conn.getresponse()
        r.read()
        return r.status, time.perf_counter() - t0
    except Exception as e:  # counted, never fatal: the load goes on
        return type(e).__name__, time.perf_counter() - t0
    finally:
        conn.close()


def server_cmd(port: int, kb: str, deadline: float) -> list[str]:
    return [sys.executable, "-m", "rag", "serve", "--host", HOST, "--port", str(port), "--llm", "extractive",
            "--kb", kb, "--deadline", str(deadline)]


def run_load(port: int, qs: list[str], clients: int, seconds: float, timeout: float, kb: str):
    results: list[tuple[str, int | str, float]] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def record(kind, status, dt):
        with lock:
            results.append((kind, status, dt))

    def client(i: int) -> None:
        n, j = i, 0
        while time.monotonic() < stop_at:
            q = qs[n % len(qs)]
            j += 1
            if (i + j) % 2 == 0:  # every client alternates, half of them starting with /ask
                body = json.dumps({"question": q, "kb": kb, "llm": "extractive"}, ensure_ascii=False).encode()
                record("ask", *request(port, "POST", "/ask", body, timeout))
            else:
                body = json.dumps({"query": q, "kb": kb, "k": 5}, ensure_ascii=False).encode()
                record("search", *request(port, "POST", "/search", body, timeout))
            n += clients

    def oversized() -> None:
        n = 0
        while time.monotonic() < stop_at:
            chunked = n % 2 == 1
            size = (5 << 18) if chunked else (2 << 20)  # 1.25 MiB chunked, 2 MiB declared
            body = b'{"question": "' + "创".encode() * (size // 3) + b'"}'
            record("oversized", *request(port, "POST", "/ask", body, timeout, chunked=chunked))
            n += 1
            time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    threads.append(threading.Thread(target=oversized, daemon=True))
    for t in threads:
        t.start()
    return threads, results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--kb", default="seeds")
    ap.add_argument("--deadline", type=float, default=120.0, help="the server's per-request deadline")
    ap.add_argument("--no-warm-pass", dest="warm_pass", action="store_false",
                    help="skip the sequential pass over the questions before the load")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/api_load.md"))
    args = ap.parse_args()

    port, qs = free_port(), questions()
    load0 = os.getloadavg()
    with running(server_cmd(port, args.kb, args.deadline), SERVER_LOG, cwd=ROOT,
                 env={**os.environ, "PYTHONPATH": str(ROOT)}) as proc:
        t_start = time.perf_counter()
        try:
            wait_http(f"http://{HOST}:{port}/health", proc, SERVER_LOG, timeout=120, interval=0.3, what="rag serve")
        except ServerFailed as e:
            raise SystemExit(f"{e}\n(the whole log: {SERVER_LOG})") from None
        ready = time.perf_counter() - t_start
        warm = [request(port, "POST", p, json.dumps(b, ensure_ascii=False).encode(), 300)
                for p, b in (("/search", {"query": qs[0], "kb": args.kb}), ("/ask", {"question": qs[0], "kb": args.kb}))]
        if any(s != 200 for s, _ in warm):
            raise SystemExit(f"warm-up failed: {warm}")
        rss_ready = status_kb("VmRSS", proc.pid)
        t_pass = time.perf_counter()
        if args.warm_pass:  # each question once, so caches keyed by question are full before RSS is watched
            for q in qs:
                request(port, "POST", "/search", json.dumps({"query": q, "kb": args.kb}, ensure_ascii=False).encode(), 60)
                request(port, "POST", "/ask", json.dumps({"question": q, "kb": args.kb}, ensure_ascii=False).encode(), 60)
        t_pass = time.perf_counter() - t_pass
        rss0 = status_kb("VmRSS", proc.pid)
        samples = [rss0]
        threads, results = run_load(port, qs, args.clients, args.seconds, args.deadline + 30, args.kb)
        while any(t.is_alive() for t in threads):
            time.sleep(2)
            samples.append(status_kb("VmRSS", proc.pid))
            if time.perf_counter() - t_start > ready + args.seconds + args.deadline + 120:
                break  # a client stuck past every timeout: report what we have
        rss1 = status_kb("VmRSS", proc.pid)
        load1 = os.getloadavg()
        t_term = time.perf_counter()
        proc.send_signal(signal.SIGTERM)  # the server alone, as a supervisor would stop it
        proc.wait(timeout=30)
        exit_s = time.perf_counter() - t_term
    report = summarise(args, results, ready, warm, (rss_ready, rss0, rss1), samples, load0, load1, exit_s,
                       proc.returncode, t_pass, len(qs))
    print(report)
    Path(args.out).write_text(report, encoding="utf-8")
    return 0


def summarise(args, results, ready, warm, rss, samples, load0, load1, exit_s, rc, t_pass, n_qs) -> str:
    rss_ready, rss0, rss1 = rss
    by_kind: dict[str, list[float]] = defaultdict(list)
    status: dict[str, Counter] = defaultdict(Counter)
    for kind, st, dt in results:
        status[kind][str(st)] += 1
        if st == 200 or kind == "oversized":
            by_kind[kind].append(dt)
    longest = max((dt for _, _, dt in results), default=0.0)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    lines = [
        "# API load test (`rag serve`, extractive backend, loopback)",
        "",
        f"Command: `python3 benchmarks/api_load.py --clients {args.clients} --seconds {args.seconds:g} --kb {args.kb}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; commit {commit} (+ working tree); "
        f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs; Python {platform.python_version()}  ",
        f"Load average (1/5/15 min) before: {load0[0]:.2f} / {load0[1]:.2f} / {load0[2]:.2f}; "
        f"after: {load1[0]:.2f} / {load1[1]:.2f} / {load1[2]:.2f}",
        "",
        f"{args.clients} clients for {args.seconds:g} s, each alternating POST /ask and POST /search over the seed "
        "questions (one connection per request), plus one client sending only oversized bodies "
        "(2 MiB declared, 1.25 MiB chunked). Server ready after "
        f"{ready:.1f} s; warm-up (first /search, first /ask): {warm[0][1]:.2f} s, {warm[1][1]:.2f} s"
        + (f"; then one sequential pass over the {n_qs} questions (/search and /ask each) in {t_pass:.0f} s, "
           "so caches keyed by question are full before RSS is watched." if args.warm_pass else "."),
        "",
        "| kind | requests | by status | p50 s | p95 s | max s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind in ("ask", "search", "oversized"):
        xs = by_kind.get(kind, [])
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(status[kind].items()))
        lines.append(f"| {kind} | {sum(status[kind].values())} | {counts} | {quantile(xs, 0.5):.3f} | {quantile(xs, 0.95):.3f} | "
                     f"{max(xs, default=float('nan')):.3f} |")
    ok = sum(status[k]["200"] for k in ("ask", "search"))
    lines += [
        "",
        f"- Throughput: {ok / args.seconds:.1f} answered requests/s; errors among /ask and /search: "
        f"{sum(v for k in ('ask', 'search') for s, v in status[k].items() if s != '200')}; "
        f"oversized bodies answered 413: {status['oversized']['413']} of {sum(status['oversized'].values())}.",
        f"- Longest request: {longest:.2f} s against the server's deadline of {args.deadline:g} s "
        f"({'none over it' if longest <= args.deadline else 'OVER THE DEADLINE'}).",
        f"- Server RSS: {rss_ready / 1024:.0f} MiB after the first requests, {rss0 / 1024:.0f} MiB when the load "
        f"started, {rss1 / 1024:.0f} MiB at the end ({(rss1 - rss0) / 1024:+.0f} MiB; sampled every 2 s during the load: "
        f"min {min(samples) / 1024:.0f}, max {max(samples) / 1024:.0f} MiB; by quarter: "
        + " → ".join(f"{samples[min(len(samples) - 1, q * (len(samples) - 1) // 4)] / 1024:.0f}" for q in range(5))
        + " MiB).",
        f"- SIGTERM after the load: the server exited in {exit_s:.2f} s (return code {rc}).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
