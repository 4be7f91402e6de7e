"""What every part of the evaluation harness shares: its error type and the repository root.

Kept apart so that data, cache, runconfig, baselines and the loop can all raise `EvalError`
without importing each other.

Deliberate compromise: `REPO_ROOT` assumes a repository checkout (the default `runs/` folder,
the code hash of the index cache, SQuAD sources named relative to the repo); issue 14 tracks
replacing it for non-editable installs.
"""

from __future__ import annotations

from pathlib import Path

from rag.errors import RagError

REPO_ROOT = Path(__file__).resolve().parents[2]


class EvalError(RagError):
    """The evaluation cannot run as asked (bad set, bad options, mismatching resume folder)."""
