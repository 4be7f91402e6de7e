"""Evaluation sets for `rag eval`: load a BEIR-style folder (or import the SQuAD data an
`evalset.json` names, once, into a cache), `rag eval-import`, and the order questions are asked in.

Deliberate compromise: a SQuAD source named in `evalset.json` is looked for relative to the set,
then to the repository root, then as given: the shipped DRCD/CMRC sets name a shared datasets
folder outside the repository (not committed), so where it lies depends on the checkout.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from rag.config import Config, load_config
from rag.evaluate.evalsets import EvalSet, load_beir, write_beir
from rag.evaluate.base import CODE_ROOT, EvalError


def _sha1_file(p: Path) -> str:
    h = hashlib.sha1()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(path: Path) -> dict[str, Any]:
    """`evalset.json` of a set folder: {"name", "source": {"format", "path"}, "defaults": {...}}."""
    m = path / "evalset.json"
    if not m.exists():
        return {}
    try:
        return json.loads(m.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise EvalError(f"{m}: not valid JSON ({e.msg})") from None


def _resolve_source(path: Path, src: str) -> Path:
    cands = [path / src, CODE_ROOT / src, Path(src)]
    for c in cands:
        if c.exists():
            return c.resolve()
    raise EvalError(
        f"{path}: the set's source data {src!r} was not found (looked in {', '.join(str(c) for c in cands)}); "
        "import it with `rag eval-import squad FILE --out DIR` and pass DIR"
    )


def load_evalset(path: str | Path, cfg: Config | None = None) -> EvalSet:
    """A BEIR-style set folder; a folder whose `evalset.json` names SQuAD source data is imported
    on the fly into the cache (`{RAG_HOME}/eval-cache/sets/`) first."""
    p = Path(path)
    if not p.exists():
        raise EvalError(f"evaluation set not found: {p}")
    if (p / "corpus.jsonl").exists():
        try:
            es = load_beir(p)
        except (FileNotFoundError, ValueError, KeyError) as e:
            raise EvalError(f"{p}: cannot read the evaluation set ({e})") from None
        es.name = read_manifest(p).get("name") or p.resolve().name
        return es
    man = read_manifest(p)
    src = man.get("source") or {}
    if not src:
        raise EvalError(
            f"{p} is not an evaluation set: it needs corpus.jsonl + queries.jsonl (BEIR format) "
            "or an evalset.json naming source data to import"
        )
    fmt = src.get("format", "squad")
    if fmt != "squad":
        raise EvalError(f"{p}/evalset.json: unsupported source format {fmt!r} (supported: squad)")
    data = _resolve_source(p, src["path"])
    name = man.get("name") or p.resolve().name
    home = Path((cfg or load_config()).paths.home)
    cache = home / "eval-cache" / "sets" / f"{name}-{_sha1_file(data)[:12]}"
    if not (cache / "corpus.jsonl").exists():
        from rag.evaluate.evalsets import import_squad

        es = import_squad(data, name=name)
        tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
        write_beir(es, tmp)
        if cache.exists():  # a concurrent import finished first
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.rename(cache)
    es = load_beir(cache)
    es.name = name
    return es


def import_set(fmt: str, src: str | Path, out: str | Path, name: str | None = None, defaults: Mapping[str, Any] | None = None) -> EvalSet:
    """`rag eval-import`: SQuAD JSON → a BEIR-style set folder (+ evalset.json recording the source)."""
    if fmt != "squad":
        raise EvalError(f"unsupported import format {fmt!r}: supported is squad (a BEIR folder is used as is)")
    srcp = Path(src)
    if not srcp.exists():
        raise EvalError(f"file not found: {srcp}")
    from rag.evaluate.evalsets import import_squad

    out = Path(out)
    try:
        es = import_squad(srcp, name=name or out.name)
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise EvalError(f"{srcp}: not SQuAD-format JSON ({e})") from None
    write_beir(es, out)
    try:
        rel = os.path.relpath(srcp.resolve(), out.resolve())
    except ValueError:
        rel = str(srcp.resolve())
    man = {"name": es.name, "source": {"format": fmt, "path": rel, "sha1": _sha1_file(srcp)}, "defaults": dict(defaults or {})}
    (out / "evalset.json").write_text(json.dumps(man, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return es


def question_order(es: EvalSet, limit: int | None = None, sample: int | None = None,
                   keep: set[str] | None = None) -> list[str]:
    """Query ids in file order, each follow-up after the question it follows; with `keep`, only
    those ids (one dev/held-out half); with `limit`, the first N questions, with `sample`, N
    questions spread evenly over the set (deterministic: every len/N-th); either way plus any
    parents they need."""
    ids = list(es.queries)
    pool = [q for q in ids if keep is None or q in keep]
    chosen = pool[:limit] if limit else pool
    if sample and sample < len(chosen):
        step = len(chosen) / sample
        chosen = [chosen[int(i * step)] for i in range(sample)]
    parent = {q: (es.answers.get(q) or {}).get("follow_up_of") for q in ids}
    out: list[str] = []
    seen: set[str] = set()

    def visit(q: str, stack: tuple[str, ...] = ()) -> None:
        if q in seen or q in stack:
            return
        p = parent.get(q)
        if p and p in es.queries:
            visit(p, stack + (q,))
        seen.add(q)
        out.append(q)

    for q in chosen:
        visit(q)
    return out
