"""Configuration: small dataclasses grouped by concern.

Precedence (lowest first): defaults < config file (TOML; `--config FILE`, else `$RAG_CONFIG`,
else `rag.toml` in the working directory if present) < `RAG_<GROUP>_<FIELD>` environment
variables (e.g. `RAG_RETRIEVE_K=8`, `RAG_LLM_BACKEND=extractive`) < explicit overrides (CLI flags).
The resolved config is saved as `config.json` beside each index.

Top-level paths have short env names too: `RAG_HOME` (data: knowledge bases, caches, feedback)
and `RAG_MODELS_DIR` (built/assembled model files).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


def _default_home() -> str:
    return os.environ.get("RAG_HOME") or str(Path.home() / ".rag-zh")


def _default_models() -> str:
    return os.environ.get("RAG_MODELS_DIR") or str(Path(_default_home()) / "models")


@dataclass
class PathsConfig:
    home: str = field(default_factory=_default_home)  # knowledge bases live in {home}/kb/{name}
    models_dir: str = field(default_factory=_default_models)
    kb: str = "seeds"  # default knowledge base name
    seeds_dir: str = str(Path(__file__).resolve().parent.parent / "seeds")

    @property
    def kb_root(self) -> Path:
        return Path(self.home) / "kb"

    def kb_dir(self, name: str | None = None) -> Path:
        return self.kb_root / (name or self.kb)


@dataclass
class ChunkConfig:
    max_tokens: int = 320  # tiktoken cl100k tokens per chunk (text only, headings excluded)
    min_tokens: int = 40  # fragments smaller than this merge with a neighbour in the same section
    overlap_sentences: int = 1  # whole sentences repeated at the start of the next chunk
    encoding: str = "cl100k_base"


@dataclass
class EmbedConfig:
    model: str = "multilingual-e5-small"  # a name built by `rag models install`, or any sentence-transformers name/path
    batch_size: int = 32
    max_seq_length: int = 512
    backend: str = "auto"  # auto | torch | onnx
    cache: bool = True  # vector cache keyed by (model, text hash)
    query_prefix: str = "auto"  # "auto": the model's known convention (e5 "query: ", bge-zh instruction); "" = none
    passage_prefix: str = "auto"  # "auto": known convention (e5 "passage: "); "" = none
    threads: int = 0  # encoder CPU threads; 0 = all cores


@dataclass
class RetrieveConfig:
    mode: str = "hybrid"  # hybrid | dense | bm25
    k: int = 5  # hits returned
    candidates: int = 50  # per-retriever candidates before fusion
    # fusion defaults chosen on the TUNE half of pooled DRCD + CMRC dev by benchmarks/retrieval.py
    # (best mean MRR@10 of the grid; numbers on the other half in benchmarks/results/retrieval.md)
    rrf_k: int = 60
    w_dense: float = 0.45
    w_bm25: float = 0.55
    fusion: str = "convex"  # rrf (weighted reciprocal rank) | convex (normalised scores, weighted sum)
    norm: str = "zscore"  # score normalisation for fusion = convex: minmax | zscore | max
    bm25_analyzer: str = "jieba+bigram"  # jieba+bigram | bigram | jieba (used when an index is built)


@dataclass
class LLMConfig:
    backend: str = "local"  # local | openai | extractive | fake
    model: str = "qwen2.5-1.5b"  # local: qwen2.5-1.5b | qwen2.5-0.5b ; openai: the served model name
    base_url: str = ""  # openai-compatible endpoint, e.g. http://127.0.0.1:8000/v1
    api_key: str = ""  # or OPENAI_API_KEY
    temperature: float = 0.1
    max_tokens: int = 384
    n_ctx: int = 4096
    n_threads: int = 0  # 0 = all cores
    kernels: str = "auto"  # llama.cpp build: auto (the self-tested build for this CPU, rag.kernels) | portable


@dataclass
class AnswerConfig:
    context_tokens: int = 1600  # token budget for the numbered evidence blocks
    max_passages: int = 5
    refuse_threshold: float = 0.6636  # chosen on the seed set's dev split by benchmarks/calibrate_refusal.py (balanced accuracy with at most 5 % false refusals; held-out in benchmarks/results/answering.md)
    support_threshold: float = 0.35  # citation support below this is flagged unsupported
    condense: bool = True  # rewrite follow-ups into standalone questions
    refuse_asked_value: bool = False  # also refuse when the question asks for an attribute no sentence holds (rag.refusal); off: on the seed dev split it refused 21 of 112 answerable questions to catch 13 of 21 unanswerable
    refuse_feature: str = "sent_h"  # retrieval-evidence feature compared with refuse_threshold (rag.extractive.evidence_features)
    local_context_tokens: int = 500  # evidence budget for the in-process model (cl100k; ≈320 Qwen tokens): prompt ingestion (~55-110 tok/s) is its first-token latency, so blocks are cut to their question-relevant sentences; see benchmarks/results/answering.md


@dataclass
class UIConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    auth: str = ""  # "user:password" enables basic auth
    max_upload_mb: int = 20
    examples: list[str] = field(default_factory=list)  # example questions on first load (else drawn from evalsets/<kb>/ or document titles)


@dataclass
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    retrieve: RetrieveConfig = field(default_factory=RetrieveConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    answer: AnswerConfig = field(default_factory=AnswerConfig)
    ui: UIConfig = field(default_factory=UIConfig)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["llm"].get("api_key"):
            d["llm"]["api_key"] = "***"  # never persist secrets beside an index
        return d

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")

    def replace(self, **groups: Mapping[str, Any]) -> "Config":
        """Copy with some fields changed: `cfg.replace(retrieve={"k": 8})`."""
        new = dataclasses.replace(self)
        for g, vals in groups.items():
            setattr(new, g, dataclasses.replace(getattr(self, g), **dict(vals)))
        return new


def _coerce(value: str, typ: Any) -> Any:
    t = typ if isinstance(typ, type) else {"int": int, "float": float, "bool": bool, "str": str}.get(str(typ), str)
    if t is bool:
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return t(value)


def _apply(cfg: Config, data: Mapping[str, Mapping[str, Any]], origin: str) -> None:
    for group, vals in data.items():
        if not hasattr(cfg, group) or not isinstance(vals, Mapping):
            raise ValueError(f"{origin}: unknown config group [{group}]")
        obj = getattr(cfg, group)
        names = {f.name: f for f in dataclasses.fields(obj)}
        for key, val in vals.items():
            if key not in names:
                raise ValueError(f"{origin}: unknown setting {group}.{key}")
            if val is None:
                continue
            setattr(obj, key, _coerce(val, names[key].type) if isinstance(val, str) else val)


def load_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Resolve the configuration. `overrides` is {group: {field: value}}; None values are ignored
    so CLI flags that were not given do not override anything."""
    env = os.environ if env is None else env
    cfg = Config()
    path = path or env.get("RAG_CONFIG") or ("rag.toml" if Path("rag.toml").exists() else None)
    if path:
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"config file not found: {p}")
        _apply(cfg, tomllib.loads(p.read_text(encoding="utf-8")), str(p))
    from_env: dict[str, dict[str, str]] = {}
    for f in dataclasses.fields(cfg):
        for sub in dataclasses.fields(getattr(cfg, f.name)):
            key = f"RAG_{f.name.upper()}_{sub.name.upper()}"
            if key in env:
                from_env.setdefault(f.name, {})[sub.name] = env[key]
    if "RAG_HOME" in env:
        from_env.setdefault("paths", {})["home"] = env["RAG_HOME"]
    if "RAG_MODELS_DIR" in env:
        from_env.setdefault("paths", {})["models_dir"] = env["RAG_MODELS_DIR"]
    _apply(cfg, from_env, "environment")
    if overrides:
        _apply(cfg, overrides, "overrides")
    return cfg
