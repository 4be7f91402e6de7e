"""Bounded fuzz run of the REST API from its own OpenAPI schema (schemathesis), goal: zero 5xx.

    python3 benchmarks/api_fuzz.py [--max-examples 60] [--max-time 420] [--kb seeds]

Serves `rag.apps.api.create_app` over the real knowledge base (`--kb`, extractive answers, real
retrieval and citation review) with uvicorn on a free 127.0.0.1 port and an API key, then runs
`schemathesis run …/openapi.json` with every check (`--checks all`: server errors, schema and
status conformance, negative data rejection, auth …), `--max-examples` cases per operation,
positive and negative modes, a fixed seed and a time budget. Every response the server sends is
also counted by status in an ASGI wrapper, so the 5xx count does not depend on parsing the
fuzzer's output. Writes `benchmarks/results/api_fuzz.md` (the counts and schemathesis' summary).

Compromise: `llm: "local"` / `"openai"` are answered by a scripted fake model in place of the
1.5B model or a remote endpoint, so the run is bounded by the fuzzer, not by decoding (the model
paths have their own tests and benchmarks); everything else is the production code.
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # tests/_servers.py: the one home of serving an app for a run
HOST = "127.0.0.1"
FULL_OUTPUT = Path(tempfile.gettempdir()) / "rag_api_fuzz_output.txt"  # the whole log; the results keep its summary


from _servers import uvicorn_thread  # noqa: E402


class StatusCounter:
    """ASGI wrapper counting responses by (path, status)."""

    def __init__(self, app):
        self.app = app
        self.counts: dict[str, Counter] = defaultdict(Counter)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")

        async def counting_send(msg):
            if msg["type"] == "http.response.start":
                self.counts[path if path in ("/ask", "/search", "/documents", "/health") else "other"][msg["status"]] += 1
            await send(msg)

        await self.app(scope, receive, counting_send)


def build_app(kb: str, api_key: str):
    from rag.answer.assistant import Assistant
    from rag.apps.api import create_app
    from rag.config import load_config
    from rag.llm.backends import FakeChatModel

    cfg = load_config(None, {"llm": {"backend": "extractive"}, "paths": {"kb": kb}})
    fake = FakeChatModel(responses=["现有干部职工68人【1】。"])

    def factory(name):
        return Assistant.open(name, cfg, llm=fake)

    return create_app(cfg, assistant_factory=factory, api_key=api_key)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-examples", type=int, default=60)
    ap.add_argument("--max-time", type=int, default=420, help="schemathesis' time budget, seconds")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--kb", default="seeds")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/api_fuzz.md"))
    args = ap.parse_args()

    import schemathesis

    key = secrets.token_hex(16)
    counter = StatusCounter(build_app(args.kb, key))
    with uvicorn_thread(counter, timeout=120, join=5) as server:
        port = server.config.port
        cmd = ["schemathesis", "run", f"http://{HOST}:{port}/openapi.json", "-H", f"Authorization: Bearer {key}",
               "--checks", "all", "--max-examples", str(args.max_examples), "--seed", str(args.seed),
               "--max-time", str(args.max_time), "--workers", "1", "--generation-database", "none",
               "--request-timeout", "150", "--no-color", "--output-sanitize", "true"]
        t0 = time.perf_counter()
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=args.max_time + 300)
            out, rc = run.stdout + run.stderr, run.returncode
        except subprocess.TimeoutExpired as e:
            out, rc = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), "timeout"
        seconds = time.perf_counter() - t0

    total = sum(sum(c.values()) for c in counter.counts.values())
    fives = sum(v for c in counter.counts.values() for s, v in c.items() if s >= 500)
    shown = out.replace(key, "KEY")
    FULL_OUTPUT.write_text(shown, encoding="utf-8")
    lines = [
        "# API fuzz run (schemathesis, from the app's own OpenAPI schema)",
        "",
        f"Command: `python3 benchmarks/api_fuzz.py --max-examples {args.max_examples} --max-time {args.max_time} "
        f"--seed {args.seed} --kb {args.kb}`  ",
        f"Fuzzer: schemathesis {schemathesis.__version__}, `--checks all`, positive and negative data, seed {args.seed}; "
        f"served by uvicorn on loopback with an API key; real KB `{args.kb}`, extractive answers, "
        "fake model for `local`/`openai`.  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; ran {seconds:.0f} s; schemathesis exit code {rc}.",
        "",
        f"**Responses: {total}; 5xx: {fives}.**",
        "",
        "| path | responses by status |",
        "| --- | --- |",
    ]
    for path, c in sorted(counter.counts.items()):
        lines.append(f"| {path} | {', '.join(f'{s}: {n}' for s, n in sorted(c.items()))} |")
    lines += ["", "schemathesis' output (its summary; failures of other checks listed there):", "", "```",
              *[ln[:300] for ln in shown.strip().splitlines()[-80:]], "```", ""]
    report = "\n".join(lines)
    Path(args.out).write_text(report, encoding="utf-8")
    print(report)
    return 0 if fives == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
