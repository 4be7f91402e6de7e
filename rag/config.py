"""Configuration: small dataclasses grouped by concern.

Precedence (lowest first): defaults < config file (TOML; `--config FILE`, else `$RAG_CONFIG`,
else `rag.toml` in the working directory if present) < `RAG_<GROUP>_<FIELD>` environment
variables (e.g. `RAG_RETRIEVE_K=8`, `RAG_LLM_BACKEND=extractive`) < explicit overrides (CLI flags).
The resolved config is saved as `config.json` beside each index.

Validated once, here (`validate`): a setting of the wrong type, an unknown name, a value outside
its allowed set or range, a missing or malformed config file all raise `ConfigError` naming the
key, where the value came from and what is allowed — one line the CLI, API and chat can show.
The allowed values of each enum setting live here (`CHOICES`) and nowhere else.

Some keys have short env names too (`SHORT_ENV`): `RAG_HOME` (data: knowledge bases, caches,
feedback), `RAG_MODELS_DIR` (built/assembled model files), `RAG_SEEDS_DIR` (the seed corpus; a
repository checkout's seeds/ by default, none in an installed package), `RAG_API_KEY` (`rag serve`'s key).
`OPENAI_BASE_URL` / `OPENAI_API_KEY` are read as defaults below a config file (`ENV_DEFAULTS`).
This module is the only one that reads the environment for settings.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from rag.errors import ConfigError

# allowed values of the enum settings: the one home of these lists (other modules import them)
RETRIEVE_MODES = ("hybrid", "dense", "bm25")
LLM_BACKENDS = ("local", "openai", "extractive", "fake")
KERNELS = ("auto", "portable")
INDEX_BACKENDS = ("local", "milvus")  # rag.index.kb dispatches on it (rag.index.milvus.kb for "milvus")
REFUSE_FEATURES = ("block", "sent", "sent_h", "mean_h", "score")  # rag.answer.scoring.evidence_features
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("retrieve", "mode"): RETRIEVE_MODES,
    ("retrieve", "fusion"): ("rrf", "convex"),
    ("retrieve", "norm"): ("minmax", "zscore", "max"),
    ("retrieve", "bm25_analyzer"): ("jieba+bigram", "bigram", "jieba"),
    ("embed", "backend"): ("auto", "torch", "onnx"),
    ("llm", "backend"): LLM_BACKENDS,
    ("llm", "kernels"): KERNELS,
    ("answer", "refuse_feature"): REFUSE_FEATURES,
    ("index", "backend"): INDEX_BACKENDS,
}
# inclusive numeric ranges (a k of 0 or 10,000 is a typo, not a wish)
RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("chunk", "max_tokens"): (16, 8192), ("chunk", "min_tokens"): (0, 4096), ("chunk", "overlap_sentences"): (0, 10),
    ("embed", "batch_size"): (1, 4096), ("embed", "max_seq_length"): (16, 8192), ("embed", "threads"): (0, 256),
    ("retrieve", "k"): (1, 100), ("retrieve", "candidates"): (1, 1000), ("retrieve", "rrf_k"): (1, 10000),
    ("retrieve", "w_dense"): (0, 1), ("retrieve", "w_bm25"): (0, 1),
    ("llm", "temperature"): (0, 2), ("llm", "max_tokens"): (1, 8192), ("llm", "n_ctx"): (256, 131072),
    ("llm", "n_threads"): (0, 256), ("llm", "timeout"): (0.1, 3600),
    ("answer", "context_tokens"): (50, 100000), ("answer", "max_passages"): (1, 50),
    ("answer", "refuse_threshold"): (0, 1), ("answer", "support_threshold"): (0, 1),
    ("answer", "local_context_tokens"): (50, 100000),
    ("ui", "port"): (0, 65535), ("ui", "max_upload_mb"): (1, 1024),
}


def _default_home() -> str:
    return os.environ.get("RAG_HOME") or str(Path.home() / ".rag-zh")


def _default_models() -> str:
    return os.environ.get("RAG_MODELS_DIR") or str(Path(_default_home()) / "models")


# the seed corpus of a repository checkout (the package beside seeds/); an installed package has none
CHECKOUT_SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def _default_seeds() -> str:
    return str(CHECKOUT_SEEDS) if CHECKOUT_SEEDS.is_dir() else ""


@dataclass
class PathsConfig:
    home: str = field(default_factory=_default_home)  # knowledge bases live in {home}/kb/{name}
    models_dir: str = field(default_factory=_default_models)
    kb: str = "seeds"  # default knowledge base name
    seeds_dir: str = field(default_factory=_default_seeds)  # the seed corpus (RAG_SEEDS_DIR); "": none (installed package)

    @property
    def kb_root(self) -> Path:
        return Path(self.home) / "kb"

    def kb_dir(self, name: str | None = None) -> Path:
        return self.kb_root / (name or self.kb)

    def seeds(self) -> Path:
        """The seed corpus folder (`rag index` without a PATH, `rag chat`'s first start), or a
        ConfigError naming the setting when it is not set or not a folder."""
        how = "set paths.seeds_dir in rag.toml or RAG_SEEDS_DIR, or use your own knowledge base (`rag index PATH --kb NAME`)"
        if not self.seeds_dir:
            raise ConfigError(f"paths.seeds_dir is not set (an installed rag-zh has no seed corpus): {how}")
        p = Path(self.seeds_dir).expanduser()
        if not p.is_dir():
            raise ConfigError(f"paths.seeds_dir = {self.seeds_dir!r}: no such folder; {how}")
        return p


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
class IndexConfig:
    backend: str = "local"  # local (in-process FAISS + bm25s in the KB folder) | milvus (docs/milvus.md)
    milvus_uri: str = ""  # "": Milvus Lite in {kb folder}/milvus.db; a path ending in .db (Lite), or http://host:19530
    milvus_token: str = ""  # "user:password" or an API key for a secured / managed Milvus
    milvus_collection: str = ""  # "": derived from the KB name (rag.index.milvus.schema.collection_base)


@dataclass
class LLMConfig:
    backend: str = "local"  # local | openai | extractive | fake
    model: str = "qwen2.5-1.5b"  # local: qwen2.5-1.5b | qwen2.5-0.5b ; openai: the served model name
    base_url: str = ""  # openai-compatible endpoint, e.g. http://127.0.0.1:8000/v1
    api_key: str = ""  # or OPENAI_API_KEY
    timeout: float = 120.0  # openai backend: seconds the server may send nothing (connecting, or between streamed pieces)
    temperature: float = 0.1
    max_tokens: int = 384
    n_ctx: int = 4096
    n_threads: int = 0  # 0 = all cores
    kernels: str = "auto"  # llama.cpp build: auto (the self-tested build for this CPU, rag.llm.kernels) | portable


@dataclass
class AnswerConfig:
    context_tokens: int = 1600  # token budget for the numbered evidence blocks
    max_passages: int = 5
    refuse_threshold: float = 0.6636  # chosen on the seed set's dev split by benchmarks/calibrate_refusal.py (balanced accuracy with at most 5 % false refusals; held-out in benchmarks/results/answering.md)
    support_threshold: float = 0.35  # citation support below this is flagged unsupported
    condense: bool = True  # rewrite follow-ups into standalone questions
    refuse_asked_value: bool = False  # also refuse when the question asks for an attribute no sentence holds (rag.answer.refusal); off: on the seed dev split it refused 21 of 112 answerable questions to catch 13 of 21 unanswerable
    refuse_feature: str = "sent_h"  # retrieval-evidence feature compared with refuse_threshold (rag.answer.scoring.evidence_features)
    local_context_tokens: int = 500  # evidence budget for the in-process model (cl100k; ≈320 Qwen tokens): prompt ingestion (~55-110 tok/s) is its first-token latency, so blocks are cut to their question-relevant sentences; see benchmarks/results/answering.md


@dataclass
class UIConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    auth: str = ""  # "user:password" enables basic auth
    max_upload_mb: int = 20
    examples: list[str] = field(default_factory=list)  # example questions on first load (else drawn from evalsets/<kb>/ or document titles)


@dataclass
class ServeConfig:
    api_key: str = ""  # `rag serve`: require `Authorization: Bearer KEY` (also RAG_API_KEY); never saved


@dataclass
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    retrieve: RetrieveConfig = field(default_factory=RetrieveConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    answer: AnswerConfig = field(default_factory=AnswerConfig)
    ui: UIConfig = field(default_factory=UIConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["llm"].get("api_key"):
            d["llm"]["api_key"] = "***"  # never persist secrets beside an index
        if d["index"].get("milvus_token"):
            d["index"]["milvus_token"] = "***"
        if d["serve"].get("api_key"):
            d["serve"]["api_key"] = "***"
        return d

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")

    def replace(self, **groups: Mapping[str, Any]) -> "Config":
        """Copy with some fields changed: `cfg.replace(retrieve={"k": 8})`."""
        new = dataclasses.replace(self)
        for g, vals in groups.items():
            setattr(new, g, dataclasses.replace(getattr(self, g), **dict(vals)))
        return new


# Short names for a few keys (beside the RAG_<GROUP>_<FIELD> form), same precedence as it
SHORT_ENV = (("RAG_HOME", "paths", "home"), ("RAG_MODELS_DIR", "paths", "models_dir"), ("RAG_SEEDS_DIR", "paths", "seeds_dir"),
             ("RAG_API_KEY", "serve", "api_key"))
# Variables other tools set for an OpenAI-compatible client, read as defaults below a config file
ENV_DEFAULTS = (("OPENAI_BASE_URL", "llm", "base_url"), ("OPENAI_API_KEY", "llm", "api_key"))


def _coerce(value: str, typ: Any, key: str, origin: str) -> Any:
    t = typ if isinstance(typ, type) else {"int": int, "float": float, "bool": bool, "str": str}.get(str(typ), str)
    if t is bool:
        v = value.strip().lower()
        if v not in {"1", "true", "yes", "on", "0", "false", "no", "off", ""}:
            raise ConfigError(f"{key} = {value!r} ({origin}): expected true or false")
        return v in {"1", "true", "yes", "on"}
    if t in (int, float):
        try:
            return t(value.strip())
        except ValueError:
            raise ConfigError(f"{key} = {value!r} ({origin}): expected {'an integer' if t is int else 'a number'}") from None
    return t(value) if t is str else value


def _apply(cfg: Config, data: Mapping[str, Mapping[str, Any]], origin: str, origins: dict | None = None) -> None:
    for group, vals in data.items():
        if not hasattr(cfg, group) or not dataclasses.is_dataclass(getattr(cfg, group)) or not isinstance(vals, Mapping):
            groups = ", ".join(f.name for f in dataclasses.fields(cfg))
            raise ConfigError(f"{origin}: unknown config group [{group}]; the groups are {groups}")
        obj = getattr(cfg, group)
        names = {f.name: f for f in dataclasses.fields(obj)}
        for key, val in vals.items():
            if key not in names:
                raise ConfigError(f"{origin}: unknown setting {group}.{key}; [{group}] has {', '.join(names)}")
            if val is None:
                continue
            typ = names[key].type
            if isinstance(val, str):
                val = _coerce(val, typ, f"{group}.{key}", origin)
            elif str(typ) in ("int", "float") and (isinstance(val, bool) or not isinstance(val, (int, float))):
                raise ConfigError(f"{group}.{key} = {val!r} ({origin}): expected a number")
            elif str(typ) == "int" and isinstance(val, float) and not val.is_integer():
                raise ConfigError(f"{group}.{key} = {val!r} ({origin}): expected an integer")
            elif str(typ) == "int":
                val = int(val)
            setattr(obj, key, val)
            if origins is not None:
                origins[(group, key)] = origin


def validate(cfg: Config, origins: Mapping[tuple[str, str], str] | None = None) -> Config:
    """Check every enum and range setting; ConfigError names the first bad one.

    >>> validate(Config()).retrieve.mode
    'hybrid'
    >>> c = Config(); c.retrieve.mode = "semantic"
    >>> validate(c, {("retrieve", "mode"): "RAG_RETRIEVE_MODE"})
    Traceback (most recent call last):
    ...
    rag.errors.ConfigError: retrieve.mode = 'semantic' (RAG_RETRIEVE_MODE): choose one of hybrid, dense, bm25
    """
    origins = origins or {}
    where = lambda g, k: origins.get((g, k), "default")  # noqa: E731
    for (g, k), allowed in CHOICES.items():
        v = getattr(getattr(cfg, g), k)
        if v not in allowed:
            raise ConfigError(f"{g}.{k} = {v!r} ({where(g, k)}): choose one of {', '.join(allowed)}")
    for (g, k), (lo, hi) in RANGES.items():
        v = getattr(getattr(cfg, g), k)
        if not lo <= v <= hi:
            raise ConfigError(f"{g}.{k} = {v!r} ({where(g, k)}): must be between {lo:g} and {hi:g}")
    if cfg.retrieve.candidates < cfg.retrieve.k:
        raise ConfigError(f"retrieve.candidates = {cfg.retrieve.candidates} is below retrieve.k = {cfg.retrieve.k}: "
                          "each retriever must return at least k candidates")
    return cfg


def load_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Resolve the configuration. `overrides` is {group: {field: value}}; None values are ignored
    so CLI flags that were not given do not override anything."""
    env = os.environ if env is None else env
    cfg = Config()
    origins: dict[tuple[str, str], str] = {}
    for key, group, field_name in ENV_DEFAULTS:  # lowest precedence: a config file and RAG_* win
        if env.get(key):
            _apply(cfg, {group: {field_name: env[key]}}, key, origins)
    path = path or env.get("RAG_CONFIG") or ("rag.toml" if Path("rag.toml").exists() else None)
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"config file {p} is not valid TOML: {e}") from None
        except OSError as e:
            raise ConfigError(f"config file {p} cannot be read: {e.strerror or e}") from None
        _apply(cfg, data, str(p), origins)
    # each variable is applied on its own, so an error names it (RAG_RETRIEVE_K = 'abc')
    for f in dataclasses.fields(cfg):
        for sub in dataclasses.fields(getattr(cfg, f.name)):
            key = f"RAG_{f.name.upper()}_{sub.name.upper()}"
            if key in env:
                _apply(cfg, {f.name: {sub.name: env[key]}}, key, origins)
    for key, group, field_name in SHORT_ENV:
        if key in env:
            _apply(cfg, {group: {field_name: env[key]}}, key, origins)
    if overrides:
        _apply(cfg, overrides, "command line", origins)
    return validate(cfg, origins)
