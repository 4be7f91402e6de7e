"""Baselines: `--update-baseline` writes one configuration's flattened scores with per-metric
tolerances; `--check` compares a run with them and refuses a run made with other settings.

Deliberate compromises
- Latency (machine-dependent), counts, the per-split copies and properties of the questions
  rather than of the system (`NOT_CHECKED`) are never part of a baseline.
- A tolerance is max(default, 1.5 / n): one question changing its outcome passes, two fail.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from rag.evaluate.base import EvalError
from rag.evaluate.runconfig import RunConfig

if TYPE_CHECKING:  # the loop's result type; importing it at run time would be a cycle
    from rag.evaluate.harness import EvalRun


LOWER_IS_BETTER = ("false_refusal_rate",)
DEFAULT_TOLERANCE = 0.02


# properties of the questions rather than of the system: shown, never checked
NOT_CHECKED = ("never_refuse_accuracy",)


def flat_metrics(m: Mapping[str, Any]) -> dict[str, float]:
    """The checked figures of one configuration, flattened: `retrieval.chunk.recall@5`, `answer.f1`,
    `retrieval_sweep.bm25.doc.mrr@10`… (counts, latency, NOT_CHECKED and the per-split copies
    are left out).

    >>> flat_metrics({"answer": {"f1": 0.51234, "n": 9}, "latency": {"total": {"p50": 1.0}}})
    {'answer.f1': 0.5123}
    """
    out: dict[str, float] = {}

    def walk(prefix: str, d: Mapping[str, Any]) -> None:
        for k_, v in d.items():
            if isinstance(v, Mapping):
                walk(f"{prefix}.{k_}", v)
            elif isinstance(v, (int, float)) and not isinstance(v, bool) and not k_.startswith("n") and k_ not in NOT_CHECKED:
                out[f"{prefix}.{k_}"] = round(float(v), 4)

    for group in ("retrieval", "retrieval_seen", "retrieval_sweep", "answer", "citation", "refusal"):
        if isinstance(m.get(group), Mapping):
            walk(group, m[group])
    return out


def baseline_path(evalset: str | Path, name: str | None = None) -> Path:
    return Path(evalset) / (name or "baseline.json")


def read_baseline(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise EvalError(f"no baseline at {path}; create one with --update-baseline")
    try:
        b = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise EvalError(f"{path}: not valid JSON ({e.msg})") from None
    if not isinstance(b.get("metrics"), Mapping):
        raise EvalError(f"{path}: no 'metrics' object")
    return b


def tolerances(m: Mapping[str, Any], default: float = DEFAULT_TOLERANCE, flips: float = 1.5) -> dict[str, float]:
    """Per-metric tolerance from the number of questions behind it: max(default, flips / n), so
    with the default 1.5 one question changing its outcome passes and two fail. A mean over 39
    unanswerable questions moves 1/39 = 0.026 per question, more than a flat 0.02 would allow.

    >>> tolerances({"answer": {"f1": 0.5, "n": 200}, "refusal": {"refusal_accuracy": 0.3, "n_unanswerable": 30}})
    {'default': 0.02, 'refusal.refusal_accuracy': 0.05}
    """
    def n_for(key: str) -> int | None:
        parts = key.split(".")
        g = parts[0]
        if g in ("retrieval", "retrieval_seen"):
            return (m.get(g, {}).get(parts[1]) or {}).get("n")
        if g == "retrieval_sweep":
            return ((m.get("retrieval_sweep", {}).get(parts[1]) or {}).get(parts[2]) or {}).get("n")
        if g == "answer":
            return (m.get("answer") or {}).get("n_list" if parts[1] == "list_coverage" else "n")
        if g == "citation":
            return (m.get("citation") or {}).get("n_evidence" if parts[1] == "cites_evidence" else "n_answers")
        if g == "refusal":
            r = m.get("refusal") or {}
            n_u, n_a = r.get("n_unanswerable") or 0, r.get("n_answerable") or 0
            # one flip moves balanced accuracy by 1/(2 n) of its class: the smaller class decides
            return {"refusal_accuracy": n_u, "false_refusal_rate": n_a, "accuracy": n_u + n_a,
                    "balanced_accuracy": 2 * min(n_u, n_a)}.get(parts[1], n_a) or None
        return None

    out: dict[str, float] = {"default": default}
    for key in flat_metrics(m):
        n = n_for(key)
        if n and flips / n > default:
            out[key] = round(flips / n, 3)
    return out


def write_baseline(path: Path, run: EvalRun, command: str, tolerance: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Write the run's (single configuration's) scores as the baseline at `path`. Tolerances are
    derived from question counts (`tolerances`) unless given."""
    if len(run.configs) != 1:
        raise EvalError("--update-baseline needs a single configuration (not --compare)")
    rc = run.configs[0]
    m = run.metrics["configs"][rc.name]
    b = {
        "command": command,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": run.info.get("git", {}).get("commit"),
        "dirty": run.info.get("git", {}).get("dirty"),
        "config": {**dataclasses.asdict(rc), "limit": run.info["settings"].get("limit"), "sample": run.info["settings"].get("sample"),
                   "split": run.info["settings"].get("split") or "all", "embed_model": run.info["config"]["embed"]["model"]},
        "n_questions": m["n"],
        "metrics": flat_metrics(m),
        "tolerance": dict(tolerance or tolerances(m)),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(b, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return b


@dataclass
class CheckRow:
    metric: str
    baseline: float
    current: float | None
    tolerance: float
    ok: bool

    @property
    def delta(self) -> float | None:
        return None if self.current is None else round(self.current - self.baseline, 4)


def check_baseline(current: Mapping[str, float], baseline: Mapping[str, Any]) -> tuple[bool, list[CheckRow]]:
    """Compare flat metrics with a baseline. A metric fails when it is worse than the baseline by
    more than its tolerance (`tolerance[metric]`, else `tolerance["default"]`), or is missing.

    >>> ok, rows = check_baseline({"answer.f1": 0.50, "refusal.false_refusal_rate": 0.10},
    ...     {"metrics": {"answer.f1": 0.55, "refusal.false_refusal_rate": 0.05}, "tolerance": {"default": 0.02}})
    >>> ok, [(r.metric, r.ok) for r in rows]   # f1 fell 0.05 > 0.02; false refusals rose 0.05 > 0.02
    (False, [('answer.f1', False), ('refusal.false_refusal_rate', False)])
    """
    tol = baseline.get("tolerance") or {}
    default = float(tol.get("default", DEFAULT_TOLERANCE))
    rows: list[CheckRow] = []
    for key, base in (baseline.get("metrics") or {}).items():
        if base is None:
            continue
        t = float(tol.get(key, default))
        cur = current.get(key)
        if cur is None:
            rows.append(CheckRow(key, float(base), None, t, False))
            continue
        worse = (cur - base) if key.endswith(LOWER_IS_BETTER) else (base - cur)
        rows.append(CheckRow(key, float(base), float(cur), t, worse <= t + 1e-9))
    return all(r.ok for r in rows), rows


def check_config_matches(baseline: Mapping[str, Any], rc: RunConfig, limit: int | None, sample: int | None = None,
                         split: str = "all") -> None:
    """Raise unless `rc` (and the question selection) is the configuration the baseline was made with."""
    bc = baseline.get("config") or {}
    diffs = [f"{k_}: baseline {bc[k_]!r}, this run {getattr(rc, k_)!r}" for k_ in ("llm", "mode", "k", "retrieval_only")
             if k_ in bc and bc[k_] != getattr(rc, k_) and not (k_ == "llm" and bc.get("retrieval_only"))]
    if "limit" in bc and bc["limit"] != limit:
        diffs.append(f"limit: baseline {bc['limit']!r}, this run {limit!r}")
    if bc.get("sample") != sample and ("sample" in bc or sample):
        diffs.append(f"sample: baseline {bc.get('sample')!r}, this run {sample!r}")
    if (bc.get("split") or "all") != split:
        diffs.append(f"split: baseline {bc.get('split') or 'all'!r}, this run {split!r}")
    if diffs:
        raise EvalError("--check: this run is not comparable with the baseline (" + "; ".join(diffs) + ")")
