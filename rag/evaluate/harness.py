"""The evaluation harness behind `rag eval`: index a set's corpus, ask every question, score it.

Flow: load the set (a BEIR-style folder, or an `evalset.json` that imports SQuAD data on the fly)
→ build or reuse a knowledge base from its corpus (cached by a hash of the corpus, the chunk and
embedding settings and the ingest/chunking code) → derive chunk-level relevance from the evidence
quotes → for every configuration (one, or several with `--compare`) and every question: retrieve
with each mode (for the recall@k curves), answer through `Assistant.ask` (unless retrieval-only),
score → append one line per question to `results.jsonl` (so an interrupted run resumes) → aggregate
into `metrics.json` and a Markdown report with plots (rag.evaluate.report).

Follow-up questions are asked with the conversation the system itself produced for the question
they follow (the parent is always asked first), as a user would experience it.

Beside the assistant, `naive:BACKEND[:MODEL]` configurations answer with a plain LangChain RAG
over the same model and encoder (rag.evaluate.naive), through the same scoring. Every row records
its dev/held-out half and every summary is given on both halves too (rag.evaluate.splits).

Deliberate compromises
- Two retrieval figures per answering configuration, each from the query the answerer really
  retrieved with (`Answer.standalone_question`: the condensed follow-up; the naive baseline's
  question as asked): `retrieval_seen` scores the passages handed to the model (the Evidence
  event), `retrieval` a separate search with that query to depth 20 (so recall@20 is measurable
  although the model sees only k passages; baselines check this one), and the mode sweep searches
  with the same query.
- In retrieval-only runs follow-up questions are searched as asked (no condensation without an
  LLM); the per-type table shows them separately.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from rag.config import Config
from rag.errors import ConfigError, RagError
from rag.evalsets import EvalSet, load_beir, read_jsonl, write_beir
from rag.evaluate import metrics as M
from rag.evaluate import naive as N
from rag.evaluate import splits as S

log = logging.getLogger(__name__)

MODES = ("bm25", "dense", "hybrid")
DEPTH = 20  # retrieval depth for the recall@k curves
SEEN = "seen"  # the pseudo-mode scoring a row's `hits`: the chunks handed to the model, in order
SEEN_KS = (1, 3, 5, 100)  # for the passages the model saw; @100 is reported as `recall_all`
KS = (1, 3, 5, 10, 20)
REPO_ROOT = Path(__file__).resolve().parents[2]
# setup failures that make every further question fail the same way: stop instead of recording
_FATAL = ("ModelNotInstalled", "IndexMissing", "ModelMismatch", "ConfigError")


class EvalError(RagError):
    """The evaluation cannot run as asked (bad set, bad options, mismatching resume folder)."""


# ============================================================================ evaluation sets


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
    cands = [path / src, REPO_ROOT / src, Path(src)]
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
    home = Path(cfg.paths.home) if cfg else Path(os.environ.get("RAG_HOME") or Path.home() / ".rag-zh")
    cache = home / "eval-cache" / "sets" / f"{name}-{_sha1_file(data)[:12]}"
    if not (cache / "corpus.jsonl").exists():
        from rag.evalsets import import_squad

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
    from rag.evalsets import import_squad

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


# ============================================================================ knowledge base


def _code_hash() -> str:
    """Ingest/clean/chunk code is part of the cache key: a changed chunker must re-index."""
    h = hashlib.sha1()
    for rel in ("rag/ingest.py", "rag/clean.py", "rag/chunking.py", "rag/index.py", "rag/bm25.py"):
        p = REPO_ROOT / rel
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()


def _doc_file_text(d: Mapping[str, Any]) -> tuple[str, int]:
    """Text written for a corpus document, and the offset of the corpus text inside it. The title
    goes first (BEIR convention: retrieval sees title + text) unless the text already contains it."""
    text = d.get("text", "") or ""
    title = (d.get("title") or "").strip()
    if title and title not in text:
        head = title + "\n\n"
        return head + text, len(head)
    return text, 0


def _safe_id(doc_id: str) -> str:
    if not doc_id or doc_id.startswith(("/", ".")) or ".." in doc_id.split("/") or "\0" in doc_id or "\\" in doc_id:
        raise EvalError(f"corpus id {doc_id!r} cannot be used as a file name")
    return doc_id


@dataclass
class Corpus:
    kb: Any
    docs_dir: Path
    offsets: dict[str, int]  # doc id -> where the corpus text starts in the indexed file
    key: str
    report: dict[str, Any] = field(default_factory=dict)


def corpus_key(es: EvalSet, cfg: Config) -> str:
    h = hashlib.sha1()
    for did in sorted(es.corpus):
        d = es.corpus[did]
        h.update(json.dumps([did, d.get("title", ""), d.get("text", "")], ensure_ascii=False).encode())
    h.update(json.dumps([dataclasses.asdict(cfg.chunk), cfg.embed.model, cfg.embed.max_seq_length], sort_keys=True).encode())
    h.update(_code_hash().encode())
    return h.hexdigest()[:16]


def build_corpus(es: EvalSet, cfg: Config, encoder: Any = None, progress: bool = True) -> Corpus:
    """Write each corpus document to `{home}/eval-cache/{set}-{key}/docs/{_id}.txt` (so the index's
    doc ids are the corpus ids) and index the folder there, or reuse that index if it is complete."""
    from rag.kb import KnowledgeBase

    key = corpus_key(es, cfg)
    base = Path(cfg.paths.home) / "eval-cache" / f"{es.name}-{key}"
    docs, kbdir, done = base / "docs", base / "kb", base / "done.json"
    offsets: dict[str, int] = {}
    for did, d in es.corpus.items():
        text, off = _doc_file_text(d)
        offsets[did] = off
        if not done.exists():
            f = docs / f"{_safe_id(did)}.txt"
            f.parent.mkdir(parents=True, exist_ok=True)
            if not text.strip():
                log.warning("corpus document %s is empty; skipped", did)
                continue
            with open(f, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
    if done.exists():
        kb = KnowledgeBase.open(kbdir, cfg, encoder=encoder)
        rep = json.loads(done.read_text(encoding="utf-8"))
    else:
        kb = KnowledgeBase.open(kbdir, cfg, encoder=encoder, create=True)
        r = kb.add_paths([docs], progress=progress)
        rep = r.to_dict() if hasattr(r, "to_dict") else {}
        rep = {k: v for k, v in rep.items() if k != "failures"} | {
            "failures": [str(f) for f in getattr(r, "failures", [])],
        }
        try:
            kb = KnowledgeBase.open(kbdir, cfg, encoder=encoder)
        except RagError:
            kb = None
        if kb is None or not kb.chunks:
            first = rep["failures"][0] if rep["failures"] else "no chunks were produced"
            raise EvalError(f"{es.name}: no corpus document could be indexed ({len(rep['failures'])} failures; first: {first})")
        done.write_text(json.dumps(rep, ensure_ascii=False, indent=2), encoding="utf-8")
    return Corpus(kb, docs, offsets, key, rep)


def document_texts(corpus: Corpus, es: EvalSet) -> dict[str, str]:
    """The original text each chunk's offsets index, as the ingester decoded it (it folds \\r\\n)."""
    out: dict[str, str] = {}
    try:
        from rag.ingest import load_file
    except ImportError:  # pragma: no cover
        load_file = None
    ids = {c.doc_id for c in corpus.kb.chunks}
    for did in ids:
        f = corpus.docs_dir / f"{did}.txt"
        text = None
        if load_file and f.exists():
            try:
                text = load_file(f, root=corpus.docs_dir).text
            except RagError as e:
                log.warning("cannot re-read %s: %s", f, e)
        if text is None and did in es.corpus:
            text = _doc_file_text(es.corpus[did])[0]
        if text is not None:
            out[did] = text
    return out


def derive_qrels(es: EvalSet, corpus: Corpus, texts: Mapping[str, str]) -> tuple[dict[str, list[list[str]]], dict[str, dict[str, int]], list]:
    """(chunk-level relevance per quote, document-level qrels, quotes that could not be placed)."""
    by_doc: dict[str, list[tuple[str, int, int]]] = {}
    for c in corpus.kb.chunks:
        by_doc.setdefault(c.doc_id, []).append((c.chunk_id, c.start, c.end, c.heading))
    evidence: dict[str, list[dict[str, Any]]] = {}
    for qid, a in es.answers.items():
        if not a.get("answerable", True):
            continue
        evs = []
        for ev in a.get("evidence") or []:
            ev = dict(ev)
            did = ev.get("doc_id")
            off = corpus.offsets.get(did, 0)
            if ev.get("start") is not None:
                ev["start"] = int(ev["start"]) + off
            evs.append(ev)
        if evs:
            evidence[qid] = evs
    chunk_rel, problems = M.chunk_qrels(evidence, texts, by_doc)
    doc_rel: dict[str, dict[str, int]] = {q: dict(r) for q, r in es.qrels.items()}
    for qid, evs in evidence.items():
        for ev in evs:
            if ev.get("doc_id"):
                doc_rel.setdefault(qid, {})[ev["doc_id"]] = max(1, doc_rel.get(qid, {}).get(ev["doc_id"], 0))
    return chunk_rel, doc_rel, problems


# ============================================================================ configurations


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


# ============================================================================ running


def git_info(root: Path = REPO_ROOT) -> dict[str, Any]:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, timeout=20).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": dirty}


def _passages_of(answer: Any, evidence_hits: Sequence[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for h in list(evidence_hits) + list(getattr(answer, "hits", ()) or ()):
        out[h.chunk.chunk_id] = h.chunk.text
    return out


def score_row(row: Mapping[str, Any], passages: Mapping[str, str] | None = None, threshold: float = 0.5) -> dict[str, Any]:
    """Per-question answer/citation/refusal scores from a results row (retrieval is scored per set)."""
    s: dict[str, Any] = {}
    if row.get("answer") is None:  # retrieval-only or failed
        return s
    answerable = bool(row.get("answerable", True))
    refused = bool(row.get("refused"))
    s["refused"] = float(refused)
    if not answerable:
        return s
    text = M.strip_markers(row.get("answer") or "")
    refs = row.get("references") or []
    if refs:
        s["em"] = M.exact_match(text, refs) if not refused else 0.0
        s["f1"] = M.char_f1(text, refs) if not refused else 0.0
        s["contains"] = M.contains_reference(text, refs) if not refused else 0.0
    items = row.get("list_items") or []
    if items:
        s["list_coverage"] = (M.list_coverage(text, items) or 0.0) if not refused else 0.0
    cits = row.get("citations") or []
    passages = passages if passages is not None else {h["chunk_id"]: h.get("text", "") for h in row.get("hits") or []}
    if not refused:
        s["citation_precision"] = M.citation_precision(cits, passages, threshold)
        s["citation_precision_self"] = M.mean(float(bool(c.get("supported"))) for c in cits) if cits else None
        s["citation_recall"] = M.citation_recall(row.get("answer") or "", cits, passages, threshold)
    rel = [c for quote in row.get("relevant_chunks") or [] for c in quote]
    if rel:
        s["cites_evidence"] = M.cites_evidence([c.get("chunk_id") for c in cits], rel) if not refused else 0.0
    return s


JUDGE_PROMPT = (
    "问题：{question}\n参考答案：{reference}\n待评答案：{answer}\n\n"
    "待评答案是否给出了与参考答案一致的信息（意思相同即可，可以更详细，语言或繁简不同不要紧）？只回答“是”或“否”。"
)


def judge_answer(model: Any, question: str, references: Sequence[str], answer: str) -> int | None:
    """LLM-as-judge: 1 when the chat model says the answer agrees with a reference, 0 when it
    says not, None when its reply is neither. Labelled as such in reports and never part of a
    baseline: a small local model is a noisy judge.

    >>> from rag.llm import FakeChatModel
    >>> judge_answer(FakeChatModel(responses=["是。"]), "哪年？", ["1985年"], "1985年创办")
    1
    """
    from langchain_core.messages import HumanMessage, SystemMessage

    msgs = [SystemMessage(content="你是严格、公正的阅卷人。"),
            HumanMessage(content=JUDGE_PROMPT.format(question=question, reference=" / ".join(references), answer=M.strip_markers(answer)))]
    try:
        out = model.invoke(msgs)
    except Exception as e:  # a judge failure must not fail the evaluation
        log.warning("judge failed: %s", e)
        return None
    text = (out.content if isinstance(out.content, str) else str(out.content)).strip().lower()
    head = text[:8]
    if head.startswith(("是", "yes", "一致")) or ("是" in head and "否" not in head and "不" not in head):
        return 1
    if head.startswith(("否", "no", "不")) or "否" in head:
        return 0
    return None


@dataclass
class EvalRun:
    out_dir: Path
    configs: list[RunConfig]
    rows: list[dict[str, Any]]
    metrics: dict[str, Any]
    info: dict[str, Any]


def _load_rows(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    if path.exists():
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by an interruption: that question is simply redone
                rows[(r["config"], r["qid"])] = r
    return rows


class _Searcher:
    """kb.search with a per-run memo: configurations that differ only in the LLM share retrieval."""

    def __init__(self, kb: Any):
        self.kb = kb
        self.memo: dict[tuple[str, str], tuple[list[Any], float]] = {}

    def __call__(self, query: str, mode: str) -> tuple[list[Any], float]:
        key = (query, mode)
        if key not in self.memo:
            t = time.perf_counter()
            hits = self.kb.search(query, k=DEPTH, mode=mode)
            self.memo[key] = (hits, time.perf_counter() - t)
        return self.memo[key]


def _naive_setup(es: EvalSet, corpus: Corpus, texts: Mapping[str, str], cfg: Config, assistant: Any):
    """The naive baseline over the same texts, cached beside the corpus's index; its chunks'
    relevance derived from the evidence quotes like the index's."""
    from types import SimpleNamespace

    titles = {d: (es.corpus.get(d) or {}).get("title", "") for d in texts}
    try:
        naive, info = N.for_harness(texts, corpus.kb.encoder, assistant, titles=titles,
                                    cache_dir=Path(cfg.paths.home) / "eval-cache" / f"{es.name}-{corpus.key}")
    except RagError as e:
        raise EvalError(f"naive baseline: {e}") from None
    rel, _, problems = derive_qrels(es, SimpleNamespace(kb=SimpleNamespace(chunks=naive.store.chunks), offsets=corpus.offsets), texts)
    for qid, i, why in problems:
        log.warning("naive baseline, evidence %s[%d]: %s", qid, i, why)
    info["evidence_problems"] = [{"qid": q, "evidence": i, "problem": w} for q, i, w in problems]
    return naive, rel, info


def run_eval(
    evalset: str | Path | EvalSet,
    cfg: Config,
    *,
    llm: str | None = None,
    mode: str | None = None,
    k: int | None = None,
    limit: int | None = None,
    sample: int | None = None,
    compare: Sequence[str] | None = None,
    retrieval_only: bool = False,
    configs: Sequence[RunConfig] | None = None,
    out_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    encoder: Any = None,
    chat_model: Any = None,
    judge_model: Any = None,
    sweep_modes: Sequence[str] = MODES,
    command: str | None = None,
    on_question: Callable[[RunConfig, str, dict[str, Any]], None] | None = None,
    split: str = "all",
) -> EvalRun:
    """Run the evaluation and write the report folder. `on_question(config, qid, row)` is called
    after each question is written (progress hooks; tests interrupt a run from it). Interrupted
    (Ctrl-C), it writes a partial report of the questions done and re-raises. `split`: "all", or
    only the "dev" or "heldout" half (rag.evaluate.splits)."""

    es = evalset if isinstance(evalset, EvalSet) else load_evalset(evalset, cfg)
    if configs is None:
        configs = make_configs(cfg, llm=llm, mode=mode, k=k, retrieval_only=retrieval_only, compare=compare)
    configs = list(configs)
    if split not in S.CHOICES:
        raise EvalError(f"unknown split {split!r}; choose from {', '.join(S.CHOICES)}")
    smap = S.split_map(es)
    qids = question_order(es, limit, sample, keep=S.keep_ids(smap, split))
    if not qids:
        raise EvalError(f"{es.name}: the set has no questions" + (f" in the {split} half" if split != "all" else ""))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = Path(out_dir) if out_dir else REPO_ROOT / "runs" / f"{es.name}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    settings = {
        "evalset": str(getattr(es, "path", "") or es.name),
        "name": es.name,
        "configs": [dataclasses.asdict(c) for c in configs],
        "limit": limit,
        "sample": sample,
        "n_questions": len(qids),
        "judge": bool(judge_model),
        "sweep_modes": list(sweep_modes),
        "split": split,
        "split_counts": S.split_counts(qids, smap),
    }
    run_json = out / "run.json"
    if run_json.exists() and results.exists():
        prev = json.loads(run_json.read_text(encoding="utf-8"))
        ps = prev.get("settings", {})
        same = (ps.get("name") == settings["name"] and ps.get("configs") == settings["configs"] and ps.get("limit") == limit
                and ps.get("sample") == sample and bool(ps.get("judge")) == bool(judge_model)
                and ps.get("split", "all") == split)
        if not resume:
            raise EvalError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        if not same:
            raise EvalError(
                f"{out} holds a run with other settings ({ps.get('name')}, {[RunConfig(**c).name for c in ps.get('configs', [])]}, "
                f"limit {ps.get('limit')}, split {ps.get('split', 'all')}); choose another --out"
            )
    done = _load_rows(results) if resume else {}
    if not resume and results.exists():
        results.unlink()

    t_index = time.perf_counter()
    corpus = build_corpus(es, cfg, encoder=encoder, progress=progress)
    t_index = time.perf_counter() - t_index
    texts = document_texts(corpus, es)
    chunk_rel, doc_rel, problems = derive_qrels(es, corpus, texts)
    for qid, i, why in problems:
        log.warning("evidence %s[%d]: %s", qid, i, why)

    info = {
        "settings": settings,
        "command": command or " ".join(shlex.quote(a) for a in ["rag", *sys.argv[1:]]),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": git_info(),
        "config": cfg.to_dict(),
        "index": {"key": corpus.key, "path": str(corpus.kb.path), "build": corpus.report, "seconds": round(t_index, 2),
                  "n_chunks": len(corpus.kb.chunks), "manifest": corpus.kb.manifest},
        "evidence_problems": [{"qid": q, "evidence": i, "problem": w} for q, i, w in problems],
    }
    run_json.write_text(json.dumps(info, ensure_ascii=False, indent=2, default=str), encoding="utf-8")

    assistant = None
    if any(not c.retrieval_only for c in configs):
        from rag.answer import Assistant

        assistant = Assistant.open(corpus.kb, cfg, llm=chat_model)
    search = _Searcher(corpus.kb)
    # per configuration: (answerer, searcher, chunk relevance, sweep modes)
    plan = {c.name: (assistant, search, chunk_rel, sweep_modes) for c in configs}
    if any(N.is_naive(c.llm) for c in configs):
        naive, naive_rel, info["naive"] = _naive_setup(es, corpus, texts, cfg, assistant)
        for c in configs:
            if N.is_naive(c.llm):
                plan[c.name] = (naive, N.NaiveSearch(naive.store, DEPTH), naive_rel, ())
        run_json.write_text(json.dumps(info, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    bar = None
    total = len(configs) * len(qids)
    todo = sum(1 for c in configs for q in qids if not _is_done(done.get((c.name, q))))
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=total - todo, desc=f"eval {es.name}", unit="q", file=sys.stderr, dynamic_ncols=True)
    n_err = 0
    n_new = 0
    try:
        with open(results, "a", encoding="utf-8") as fh:
            for rc in configs:
                for qid in qids:
                    if _is_done(done.get((rc.name, qid))):
                        continue
                    answerer, searcher, rel, sweep = plan[rc.name]
                    row = _run_one(es, qid, rc, answerer, searcher, done, rel, doc_rel, sweep, cfg)
                    row["split"] = smap.get(qid)
                    if judge_model is not None and row.get("answer") is not None and row.get("answerable") \
                            and not row.get("refused") and row.get("references"):
                        row["judge"] = judge_answer(judge_model, row["question"], row["references"], row["answer"])
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                    fh.flush()
                    done[(rc.name, qid)] = row
                    n_new += 1
                    if row.get("error"):
                        n_err += 1
                        if n_err >= 5 and n_err == n_new:
                            raise EvalError(f"every question failed so far; last error: {row['error']}")
                    if bar:
                        bar.update(1)
                    if on_question:
                        on_question(rc, qid, row)
    except KeyboardInterrupt:
        if bar:
            bar.close()
            bar = None
        if done:
            try:
                finalize(out, es, configs, qids, done, info, sweep_modes, partial=True)
                print(f"interrupted: partial report in {out}; continue with `rag eval --resume {out}`", file=sys.stderr)
            except Exception as e:  # never hide the interruption behind a reporting error
                log.warning("partial report failed: %s", e)
        raise
    finally:
        if bar:
            bar.close()

    return finalize(out, es, configs, qids, done, info, sweep_modes)


def finalize(out: Path, es: EvalSet, configs: Sequence[RunConfig], qids: Sequence[str], done: Mapping[tuple[str, str], dict],
             info: dict[str, Any], sweep_modes: Sequence[str] = MODES, partial: bool = False) -> EvalRun:
    """Aggregate the rows, write metrics.json, run.json and the report. A partial run (interrupted,
    or --report-only before the end) is scored on the questions finished in every configuration,
    so the columns of a comparison stay comparable, and says so."""
    from rag.evaluate import report as R

    finished = [q for q in qids if all((c.name, q) in done for c in configs)]
    if partial or len(finished) < len(qids):
        partial = True
        info["partial"] = {"questions_scored": len(finished), "questions_planned": len(qids)}
        qids = finished
    else:
        info.pop("partial", None)
    rows = [done[(c.name, q)] for c in configs for q in qids]
    metrics = aggregate(rows, configs, es, sweep_modes)
    idx = info.get("index") or {}
    metrics["index"] = {"n_documents": len(es.corpus), "n_chunks": idx.get("n_chunks"), "build_seconds": idx.get("seconds"),
                        "unlocated_evidence": len(info.get("evidence_problems") or [])}
    if partial:
        metrics["partial"] = info["partial"]
    info["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    (out / "run.json").write_text(json.dumps(info, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    (out / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
    R.write_report(out, info, metrics, rows, configs)
    return EvalRun(out, list(configs), rows, metrics, info)


def report_only(out_dir: str | Path, evalset: str | Path | EvalSet | None = None, cfg: Config | None = None) -> EvalRun:
    """Score and report what an (unfinished) run folder holds, without asking anything."""
    out = Path(out_dir)
    rj, res = out / "run.json", out / "results.jsonl"
    if not rj.exists() or not res.exists():
        raise EvalError(f"{out} holds no run (run.json and results.jsonl are needed)")
    info = json.loads(rj.read_text(encoding="utf-8"))
    st = info["settings"]
    if isinstance(evalset, EvalSet):
        es = evalset
    else:
        es = load_evalset(evalset or st["evalset"], cfg)
    configs = [RunConfig(**c) for c in st["configs"]]
    done = {k: r for k, r in _load_rows(res).items() if _is_done(r) or r.get("answer") is not None or r.get("retrieved")}
    qids = question_order(es, st.get("limit"), st.get("sample"), keep=S.keep_ids(S.split_map(es), st.get("split") or "all"))
    sweep = tuple(st.get("sweep_modes") or MODES)
    return finalize(out, es, configs, qids, done, info, sweep)


def _is_done(row: Mapping[str, Any] | None) -> bool:
    return bool(row) and not row.get("error")


def _history(es: EvalSet, qid: str, rc: RunConfig, done: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[tuple[str, str]]:
    chain: list[tuple[str, str]] = []
    p = (es.answers.get(qid) or {}).get("follow_up_of")
    seen = {qid}
    while p and p in es.queries and p not in seen:
        seen.add(p)
        prev = done.get((rc.name, p)) or {}
        chain.append((es.question(p), prev.get("answer") or ""))
        p = (es.answers.get(p) or {}).get("follow_up_of")
    return list(reversed(chain))


def _run_one(es, qid, rc: RunConfig, assistant, search: _Searcher, done, chunk_rel, doc_rel, sweep_modes, cfg) -> dict[str, Any]:
    from rag.types import Evidence, Final, Token

    a = es.answers.get(qid) or {}
    q = es.question(qid)
    meta = es.queries[qid].get("metadata") or {}
    answerable = bool(a.get("answerable", meta.get("answerable", bool(es.qrels.get(qid)))))
    row: dict[str, Any] = {
        "config": rc.name,
        "qid": qid,
        "question": q,
        "type": a.get("type") or meta.get("type") or ("unanswerable" if not answerable else "question"),
        "kind": a.get("kind") or a.get("type") or meta.get("kind") or "",
        "lang": a.get("lang") or meta.get("lang") or "",
        "answerable": answerable,
        "follow_up_of": a.get("follow_up_of"),
        "references": a.get("answers") or [],
        "list_items": a.get("list_items") or [],
        "evidence": a.get("evidence") or [],
        "relevant_chunks": chunk_rel.get(qid, []),
        "relevant_docs": sorted(d for d, s in (doc_rel.get(qid) or {}).items() if s > 0),
        "answer": None,
    }
    query = q
    timings: dict[str, float] = {}
    if not rc.retrieval_only:
        history = _history(es, qid, rc, done)
        row["history"] = history
        t0 = time.perf_counter()
        first = None
        ev_hits: tuple = ()
        final = None
        try:
            for ev in assistant.ask(q, history, llm_backend=rc.llm, k=rc.k, mode=rc.mode):
                if isinstance(ev, Token) and first is None:
                    first = time.perf_counter() - t0
                elif isinstance(ev, Evidence):
                    ev_hits = ev.hits
                elif isinstance(ev, Final):
                    final = ev.answer
        except RagError as e:
            if type(e).__name__ in _FATAL:
                raise
            row["error"] = f"{type(e).__name__}: {e}"
        except Exception as e:  # a bug in one answer must not lose the other 119: record it
            log.exception("question %s failed", qid)
            row["error"] = f"{type(e).__name__}: {e}"
        total = time.perf_counter() - t0
        if final is not None:
            ans = final
            timings = {k_: float(v) for k_, v in dict(ans.timings).items()}
            timings.setdefault("first_token", first if first is not None else total)
            timings.setdefault("total", total)
            # the query the assistant searched with: the condensed follow-up, or the Chinese form
            # of an English question (diagnostics["retrieval_query"])
            query = dict(getattr(ans, "diagnostics", {}) or {}).get("retrieval_query") or ans.standalone_question or q
            passages = _passages_of(ans, ev_hits)
            row.update(
                answer=ans.text,
                refused=bool(ans.refused),
                grounded=bool(getattr(ans, "grounded", True)),
                model=ans.model,
                standalone_question=ans.standalone_question or q,
                claims=[c.to_dict() for c in getattr(ans, "claims", ())],
                refusal_reason=getattr(ans, "refusal_reason", ""),
                diagnostics=dict(getattr(ans, "diagnostics", {}) or {}),
                citations=[c.to_dict() for c in ans.citations],
                hits=[{"rank": h.rank, "chunk_id": h.chunk.chunk_id, "doc_id": h.chunk.doc_id, "score": round(float(h.score), 6),
                       "text": h.chunk.text, **_merged(h)} for h in (ev_hits or ans.hits)],
            )
            row["scores"] = score_row(row, passages, threshold=0.5)
        elif "error" not in row:
            row["error"] = "the assistant ended without a Final event"
    retrieved: dict[str, list[str]] = {}
    row["retrieval_query"] = query
    modes = list(dict.fromkeys([rc.mode, *sweep_modes]))
    for m in modes:
        try:
            hits, secs = search(query, m)
        except RagError as e:
            if type(e).__name__ in _FATAL:
                raise
            row.setdefault("error", f"search {m}: {e}")
            continue
        retrieved[m] = [h.chunk.chunk_id for h in hits]
        if m == rc.mode:
            timings.setdefault("retrieve", secs)
            if rc.retrieval_only:
                row["hits"] = [{"rank": h.rank, "chunk_id": h.chunk.chunk_id, "doc_id": h.chunk.doc_id, "score": round(float(h.score), 6),
                                "text": h.chunk.text} for h in hits[: rc.k]]
                timings["total"] = secs
    row["retrieved"] = retrieved
    row["timings"] = {k_: round(v, 4) for k_, v in timings.items()}
    return row


# ============================================================================ aggregation


def _doc_of(chunk_id: str) -> str:
    return chunk_id.rsplit("#", 1)[0]


def retrieval_for(rows: Sequence[Mapping[str, Any]], mode: str, ks: Sequence[int] = KS) -> dict[str, Any]:
    """Chunk- and document-level retrieval metrics (ranx) of the rows' `retrieved[mode]` lists."""
    ev_q: dict[str, dict[str, int]] = {}
    ev_run: dict[str, list[str]] = {}
    doc_q: dict[str, dict[str, int]] = {}
    doc_run: dict[str, list[str]] = {}
    for r in rows:
        if not r.get("answerable", True) or mode not in (r.get("retrieved") or {}):
            continue
        ranked = r["retrieved"][mode]
        quotes = r.get("relevant_chunks") or []
        if quotes:
            ev_q[r["qid"]] = {f"ev{i}": 1 for i in range(len(quotes))}
            ev_run[r["qid"]] = M.evidence_ranking(ranked, quotes)
        if r.get("relevant_docs"):
            doc_q[r["qid"]] = {d: 1 for d in r["relevant_docs"]}
            doc_run[r["qid"]] = M.doc_ranking([_doc_of(c) for c in ranked])
    cm, cper = M.retrieval_metrics(ev_q, ev_run, ks)
    dm, dper = M.retrieval_metrics(doc_q, doc_run, ks)
    return {"chunk": cm | {"n": len(ev_q)}, "doc": dm | {"n": len(doc_q)}, "_per_query": {"chunk": cper, "doc": dper}}


def _mean_key(rows: Iterable[Mapping[str, Any]], key: str) -> float | None:
    return M.mean((r.get("scores") or {}).get(key) for r in rows)


def aggregate(rows, configs: Sequence[RunConfig], es: EvalSet, sweep_modes=MODES) -> dict[str, Any]:
    """metrics.json: per configuration, retrieval (the passages the model saw; a depth-20 search,
    its own mode and the sweep), answer, citation, refusal and latency summaries, per-document
    and per-type breakdowns, and the same summaries on the dev and held-out halves (`by_split`)."""
    out: dict[str, Any] = {"evalset": es.name, "configs": {}}
    smap = S.split_map(es)
    for rc in configs:
        rs = [r for r in rows if r["config"] == rc.name]
        sweep = () if N.is_naive(rc.llm) else sweep_modes  # its one retrieval is its own FAISS store
        m, per_q = config_metrics(rs, rc, sweep)
        # per document (first relevant document) and per question type
        groups_doc: dict[str, list[dict]] = {}
        groups_type: dict[str, list[dict]] = {}
        for r in rs:
            d = (r.get("relevant_docs") or ["(unanswerable)" if not r.get("answerable", True) else "(none)"])[0]
            groups_doc.setdefault(d, []).append(r)
            groups_type.setdefault(r.get("type") or "", []).append(r)
        m["per_document"] = {d: _group_summary(g, per_q, rc) for d, g in sorted(groups_doc.items())}
        m["per_type"] = {t: _group_summary(g, per_q, rc) for t, g in sorted(groups_type.items())}
        m["by_split"] = S.by_split(rs, smap, lambda sub: config_metrics(sub, rc, ())[0])
        out["configs"][rc.name] = m
    return out


def _merged(hit: Any) -> dict[str, Any]:
    """The chunks an evidence block joins (rag.prompts.pack merges adjacent hits into one block
    named after its first chunk), for scoring the block by what it holds."""
    m = (getattr(hit.chunk, "metadata", None) or {}).get("merged")
    return {"merged": list(m)} if m else {}


def _seen_rows(rs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Answered rows with `retrieved[SEEN]`: their `hits`, the passages handed to the model, in
    order. A merged block is relevant to a quote when one of the chunks it joins is."""
    out = []
    for r in rs:
        if r.get("answer") is None or r.get("hits") is None:
            continue
        blocks = [(h["chunk_id"], set(h.get("merged") or [h["chunk_id"]])) for h in r["hits"]]
        rel = [sorted(set(q) | {b for b, members in blocks if members & set(q)}) for q in r.get("relevant_chunks") or []]
        out.append({**r, "relevant_chunks": rel, "retrieved": {**(r.get("retrieved") or {}), SEEN: [b for b, _ in blocks]}})
    return out


def config_metrics(rs: Sequence[Mapping[str, Any]], rc: RunConfig, sweep_modes: Sequence[str]) -> tuple[dict[str, Any], dict]:
    """The summaries of one configuration's rows (and the per-query retrieval scores of its own
    mode, for the breakdowns)."""
    ans = [r for r in rs if r.get("answerable", True)]
    answered = [r for r in rs if r.get("answer") is not None]
    m: dict[str, Any] = {"config": dataclasses.asdict(rc), "n": len(rs), "n_answerable": len(ans),
                         "n_errors": sum(1 for r in rs if r.get("error"))}
    main = retrieval_for(rs, rc.mode)
    per_q = main.pop("_per_query")
    m["retrieval"] = main
    if not rc.retrieval_only:
        seen = retrieval_for(_seen_rows(rs), SEEN, SEEN_KS)
        seen.pop("_per_query")
        for level in ("chunk", "doc"):  # recall over every passage the model saw, whatever k was
            seen[level]["recall_all"] = seen[level].pop(f"recall@{SEEN_KS[-1]}", None)
        m["retrieval_seen"] = seen
        m["n_rewritten_query"] = sum(1 for r in answered if (r.get("retrieval_query") or r.get("standalone_question") or r["question"]) != r["question"])
    m["retrieval_sweep"] = {}
    for mode in sweep_modes:
        sw = retrieval_for(rs, mode)
        sw.pop("_per_query")
        m["retrieval_sweep"][mode] = sw
    if not rc.retrieval_only:
        aa = [r for r in answered if r.get("answerable", True)]
        nonref = [r for r in aa if not r.get("refused")]
        m["answer"] = {
            "em": _mean_key(aa, "em"),
            "f1": _mean_key(aa, "f1"),
            "contains": _mean_key(aa, "contains"),
            "list_coverage": _mean_key(aa, "list_coverage"),
            "n": len(aa),
            "n_list": sum(1 for r in aa if (r.get("scores") or {}).get("list_coverage") is not None),
        }
        m["citation"] = {
            "precision": _mean_key(nonref, "citation_precision"),
            "precision_self": _mean_key(nonref, "citation_precision_self"),
            "recall": _mean_key(nonref, "citation_recall"),
            "cites_evidence": _mean_key(aa, "cites_evidence"),
            "grounded": M.mean(float(bool(r.get("grounded"))) for r in nonref),
            "n_answers": len(nonref),
            "n_evidence": sum(1 for r in aa if (r.get("scores") or {}).get("cites_evidence") is not None),
        }
        judged = [r["judge"] for r in aa if r.get("judge") is not None]
        if any("judge" in r for r in aa):
            m["judge"] = {"label": "LLM-as-judge (configured LLM; noisy, not part of baselines)",
                          "agreement": M.mean(judged), "n": len(judged),
                          "n_unparsed": sum(1 for r in aa if "judge" in r and r["judge"] is None)}
        m["refusal"] = S.refusal_summary([bool(r.get("answerable", True)) for r in answered], [bool(r.get("refused")) for r in answered])
    lat_keys = ["retrieve"] if rc.retrieval_only else ["retrieve", "first_token", "total"]
    m["latency"] = {k_: M.latency_summary((r.get("timings") or {}).get(k_) for r in rs) for k_ in lat_keys}
    return m, per_q


def _group_summary(rs: Sequence[Mapping[str, Any]], per_q: Mapping[str, Mapping[str, Mapping[str, float]]], rc: RunConfig) -> dict[str, Any]:
    s: dict[str, Any] = {"n": len(rs)}
    cq = [per_q["chunk"][r["qid"]]["recall@5"] for r in rs if r["qid"] in per_q["chunk"]]
    dq = [per_q["doc"][r["qid"]]["recall@5"] for r in rs if r["qid"] in per_q["doc"]]
    s["chunk_recall@5"] = M.mean(cq)
    s["doc_recall@5"] = M.mean(dq)
    if not rc.retrieval_only:
        aa = [r for r in rs if r.get("answerable", True)]
        s["f1"] = _mean_key(aa, "f1")
        s["contains"] = _mean_key(aa, "contains")
        s["refused"] = M.mean(float(bool(r.get("refused"))) for r in rs if r.get("answer") is not None)
    return s


# ============================================================================ baselines

# metrics where lower is better; latency is machine-dependent and never part of a baseline
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
