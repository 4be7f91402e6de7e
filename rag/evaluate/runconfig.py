"""Run configurations: one `RunConfig` per column of a comparison, from the command line's
`--llm/--mode/--k` and the cartesian product of `--compare AXIS=V1,V2` axes.

A `naive:BACKEND[:MODEL]` configuration is normalised to the naive recipe's fixed retrieval
(rag.evaluate.naive), whatever mode and k say.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Sequence

from rag.config import Config
from rag.errors import ConfigError
from rag.evaluate import naive as N
from rag.evaluate.base import EvalError

# the retrieval modes, in the order the sweep searches and reports them
from rag.config import RETRIEVE_MODES  # noqa: E402 - the one list of modes

MODES = tuple(sorted(RETRIEVE_MODES))  # sweep order: bm25, dense, hybrid


@dataclass(frozen=True)
class RunConfig:
    """One column of a comparison."""

    llm: str
    mode: str
    k: int
    retrieval_only: bool = False

    @property
    def name(self) -> str:
        return f"{self.mode}/retrieval" if self.retrieval_only else f"{self.llm}/{self.mode}/k{self.k}"


def parse_compare(specs: Sequence[str] | None) -> list[dict[str, Any]]:
    """`["mode=bm25,dense", "llm=extractive,local"]` → the cartesian product of the axes.

    >>> parse_compare(["mode=bm25,dense"])
    [{'mode': 'bm25'}, {'mode': 'dense'}]
    """
    if not specs:
        return [{}]
    axes: list[list[tuple[str, Any]]] = []
    for spec in specs:
        if "=" not in spec:
            raise EvalError(f"--compare {spec!r}: expected AXIS=V1,V2 with AXIS one of mode, llm, k")
        axis, vals = spec.split("=", 1)
        axis = axis.strip().lower()
        values = [v.strip() for v in vals.split(",") if v.strip()]
        if axis not in ("mode", "llm", "k") or not values:
            raise EvalError(f"--compare {spec!r}: AXIS must be mode, llm or k, with at least one value")
        if axis == "mode" and (bad := [v for v in values if v not in MODES]):
            raise EvalError(f"--compare: unknown mode(s) {', '.join(bad)}; choose from {', '.join(MODES)}")
        if axis == "k":
            try:
                values = [int(v) for v in values]
            except ValueError:
                raise EvalError(f"--compare {spec!r}: k values must be integers") from None
        axes.append([(axis, v) for v in values])
    return [dict(combo) for combo in itertools.product(*axes)]


def make_configs(cfg: Config, *, llm: str | None, mode: str | None, k: int | None, retrieval_only: bool, compare: Sequence[str] | None) -> list[RunConfig]:
    base = dict(llm=llm or cfg.llm.backend, mode=mode or cfg.retrieve.mode, k=k or cfg.retrieve.k)
    if base["mode"] not in MODES:
        raise EvalError(f"unknown retrieval mode {base['mode']!r}; choose from {', '.join(MODES)}")
    out: list[RunConfig] = []
    for combo in parse_compare(compare):
        rc = RunConfig(**{**base, **combo}, retrieval_only=retrieval_only)
        if N.is_naive(rc.llm):  # its recipe fixes retrieval (FAISS, top 4) whatever mode and k say
            try:
                rc = RunConfig(N.normalise_spec(rc.llm), N.MODE, N.K, False)
            except ConfigError as e:
                raise EvalError(f"{rc.llm!r}: {e}") from None
            if retrieval_only:
                raise EvalError(f"{rc.llm!r}: the naive baseline is an answering configuration, not --retrieval-only")
        if rc not in out:
            out.append(rc)
    return out
