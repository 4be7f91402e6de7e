"""What every part of the evaluation harness shares: its error type and where it finds things.

Kept apart so that data, cache, runconfig, baselines and the loop can all raise `EvalError`
without importing each other.

`CODE_ROOT` is the folder holding the `rag` package: a repository checkout, or site-packages in
an installed one. The index cache's code hash reads `rag/...` files there (present in both), an
eval set's source data is also looked up there (a checkout's benchmarks/…; elsewhere the set's own
folder or the path as given), and `git_info` asks git there (no commit recorded outside a
checkout). Reports go under the working directory (`runs_dir`), never into the install.
"""

from __future__ import annotations

from pathlib import Path

from rag.errors import RagError

CODE_ROOT = Path(__file__).resolve().parents[2]


def runs_dir() -> Path:
    """Where `rag eval` writes a run's report folder unless `--out` says otherwise: runs/ under
    the working directory (the repository root, when run from a checkout)."""
    return Path.cwd() / "runs"


class EvalError(RagError):
    """The evaluation cannot run as asked (bad set, bad options, mismatching resume folder)."""
