"""CI's regression gate: the seed set with the extractive backend and the real e5 model must not
fall below evalsets/seeds/baseline.json by more than its tolerance (`rag eval --check`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_seed_set_extractive_meets_baseline(tmp_path):
    from rag.config import load_config

    baseline = ROOT / "evalsets" / "seeds" / "baseline.json"
    assert baseline.exists(), "evalsets/seeds/baseline.json is missing (rag eval evalsets/seeds --llm extractive --update-baseline)"
    b = json.loads(baseline.read_text(encoding="utf-8"))
    assert b["config"]["llm"] == "extractive" and b["metrics"]
    cfg = load_config()
    models = Path(cfg.paths.models_dir)
    if not (models / cfg.embed.model).exists():
        pytest.fail(f"the e5 model is not installed in {models}; run `rag models install` first")
    env = dict(os.environ)
    # a fresh data folder (the index is built from scratch) but the installed models
    env["RAG_HOME"] = str(tmp_path / "home")
    env["RAG_MODELS_DIR"] = str(models)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "rag", "eval", "evalsets/seeds", "--llm", "extractive", "--check", "--out", str(out), "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600,
    )
    assert proc.returncode == 0, f"rag eval --check failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert "baseline check passed" in proc.stdout
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    name = f"extractive/{b['config']['mode']}/k{b['config']['k']}"  # --check reuses the baseline's settings
    assert m["configs"][name]["n_errors"] == 0
    assert (out / "report.md").exists() and (out / "results.jsonl").exists()
