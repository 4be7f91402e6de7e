"""Milvus naming, schema and connection for the `index.backend = "milvus"` backend (docs/milvus.md).

One knowledge base = one alias (the *collection base*, derived from the KB name) that points at
the current version's collection `<base>_v<stamp>`; each version has a companion collection
`<base>_v<stamp>_m` holding its manifest (the same JSON the local backend writes), so switching
the alias switches chunks and manifest together. A third, `<base>_v<stamp>_t`, holds the version's
documents' original texts (rag.index.doc_texts blobs, base64 in VARCHAR parts, the manifest
collection's schema).

Full text: the BM25 Function runs over a VARCHAR field that holds OUR analyzer's tokens
(rag.index.bm25.tokenize: OpenCC fold → jieba + CJK bigrams), joined by spaces (`token_text`). The
field's analyzer only has to split on spaces: `whitespace` on a Milvus server; Milvus Lite has
only `standard` (regex \\w+ plus lower case) and `jieba`, and `standard` splits our joined tokens
exactly like `whitespace` does once `token_text` has mapped every non-word character inside a
token to "_" (tokens are already lower case). So both backends index and score the same tokens.

Deliberate compromises: the manifest is stored as JSON split into VARCHAR parts of a small
collection (Milvus has no blob type; every collection also needs a vector field, hence the
2-dim dummy vector); names are sanitised to Milvus's [A-Za-z0-9_] with a short hash when the KB
name had other characters.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from pathlib import Path
from typing import Any, Sequence

from rag.errors import ConfigError, RagError

log = logging.getLogger(__name__)

MAX_TEXT = 65535  # Milvus VARCHAR max_length (bytes)
MANIFEST_PART = 60000  # characters of manifest JSON per meta row (≤ MAX_TEXT bytes once ASCII-escaped)
META_SUFFIX = "_m"
TEXT_SUFFIX = "_t"  # the version's documents' texts (rag.index.milvus.store), same schema as the manifest's
SUFFIXES = (META_SUFFIX, TEXT_SUFFIX)  # a version's companion collections
CHUNK_FIELDS = ("chunk_id", "doc_id", "row", "n", "title", "section", "text", "start", "end", "source", "metadata")
_NON_WORD = re.compile(r"\W", re.UNICODE)


def collection_base(kb_name: str, override: str = "") -> str:
    """The alias naming a KB's current collection.

    >>> collection_base("seeds"), collection_base("my-docs.v2")[:15]
    ('rag_seeds', 'rag_my_docs_v2_')
    """
    if override:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,200}", override):
            raise ConfigError(f"index.milvus_collection = {override!r}: use letters, digits and '_' "
                              "(not starting with a digit), at most 200")
        return override
    safe = re.sub(r"[^A-Za-z0-9_]", "_", kb_name)
    base = f"rag_{safe}"[:180]
    if safe != kb_name:  # two names that sanitise alike must not share a collection
        base += "_" + hashlib.sha1(kb_name.encode()).hexdigest()[:8]
    return base


def token_text(tokens: Sequence[str]) -> str:
    """Our BM25 tokens as the text Milvus's analyzer splits back into the same tokens.

    >>> token_text(["东北", "covid19", "don't"])
    '东北 covid19 don_t'
    """
    return " ".join(_NON_WORD.sub("_", t) for t in tokens if t)


def milvus_uri(cfg, kb_dir: Path) -> str:
    """The configured URI; "" → a Milvus Lite data directory inside the KB folder."""
    uri = (cfg.index.milvus_uri or "").strip()
    if not uri:
        return str(Path(kb_dir) / "milvus.db")
    if uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:")):
        return uri
    if not uri.endswith(".db"):
        raise ConfigError(f"index.milvus_uri = {uri!r}: give a Milvus Lite path ending in .db, or http://host:19530")
    return str(Path(uri).expanduser().resolve())


def is_lite_path(uri: str) -> bool:
    return uri.endswith(".db") and "://" not in uri


_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()


def connect(uri: str, token: str = ""):
    """One MilvusClient per (uri, token) in this process: an embedded Lite data directory can be
    opened by one process only (DataDirLockedError), and twice in one process would be two servers."""
    key = (uri, token)
    with _clients_lock:
        c = _clients.get(key)
        if c is not None:
            return c
        from pymilvus import MilvusClient

        if is_lite_path(uri):
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        # milvus_lite logs a held data folder as an ERROR with a traceback, pymilvus logs it again:
        # the RagError below says it in one line
        quiet = [logging.getLogger(n) for n in ("milvus_lite", "pymilvus")]
        levels = [q.level for q in quiet]
        for q in quiet:
            q.setLevel(logging.CRITICAL)
        try:
            c = MilvusClient(uri=uri, token=token or "")
        except Exception as e:
            hint = (" (a Milvus Lite folder is used by one process only: serve it with `milvus-lite server "
                    "--data-dir DIR --port N` and set index.milvus_uri = http://127.0.0.1:N)") if is_lite_path(uri) else ""
            raise RagError(f"cannot connect to Milvus at {uri}: {type(e).__name__}: {str(e)[:300]}{hint}") from e
        finally:
            for q, lv in zip(quiet, levels):
                q.setLevel(lv)
        _clients[key] = c
        return c


def close_clients() -> None:
    """Close every client this process opened (releases an embedded Lite data directory)."""
    with _clients_lock:
        items = list(_clients.items())
        _clients.clear()
    for (uri, _), c in items:
        try:
            c.close()
        except Exception:  # pragma: no cover - best effort
            pass
        if is_lite_path(uri):
            try:
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(uri)
            except Exception:  # pragma: no cover - other milvus-lite versions
                pass


def chunk_schema(client, dim: int, analyzer: dict):
    from pymilvus import DataType, Function, FunctionType

    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=1024)
    s.add_field("doc_id", DataType.VARCHAR, max_length=1024)
    s.add_field("row", DataType.INT64)
    s.add_field("n", DataType.INT64)
    s.add_field("title", DataType.VARCHAR, max_length=MAX_TEXT)
    s.add_field("section", DataType.JSON)
    s.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT)
    s.add_field("start", DataType.INT64)
    s.add_field("end", DataType.INT64)
    s.add_field("source", DataType.VARCHAR, max_length=MAX_TEXT)
    s.add_field("metadata", DataType.JSON)  # Chunk.metadata (offset_runs and the rest)
    s.add_field("tokens", DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True, analyzer_params=analyzer)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=int(dim))
    s.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["tokens"],
                            output_field_names=["sparse"]))
    return s


def chunk_index_params(client, k1: float, b: float, lite: bool = False):
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type="FLAT", metric_type="IP")  # exact, like the local IndexFlatIP
    bm = {"bm25_k1": float(k1), "bm25_b": float(b)}
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=bm)
    if lite:
        # pymilvus 3 flattens `params` into top-level index keys; Milvus Lite 3.2.2 reads only a
        # JSON "params" key and would silently use its default k1 = 1.5 (measured: BM25 top-10
        # differed from bm25s for 80 % of questions). IndexParam has no public way to send it.
        ip[-1]._configs["params"] = bm
    ip.add_index("row", index_type="INVERTED")
    return ip


_tokenizers: dict[int, str] = {}  # id(client) → the tokenizer that worked (asked once per client)


def create_chunk_collection(client, name: str, dim: int, k1: float, b: float) -> str:
    """Create the chunk collection; returns the tokenizer used: `whitespace` where the server has
    it, else `standard` (Milvus Lite), which splits `token_text` output identically."""
    last: Exception | None = None
    known = _tokenizers.get(id(client))
    quiet = logging.getLogger("pymilvus")
    for tok in ((known,) if known else ("whitespace", "standard")):
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)  # pymilvus logs the expected refusal of `whitespace` by Lite as an ERROR
        try:
            client.create_collection(name, schema=chunk_schema(client, dim, {"tokenizer": tok}),
                                     index_params=chunk_index_params(client, k1, b, lite=tok == "standard"))
            _tokenizers[id(client)] = tok
            return tok
        except Exception as e:  # Lite: "unknown tokenizer type: 'whitespace'"
            last = e
            if "tokenizer" not in str(e).lower() and "analyzer" not in str(e).lower():
                break
            if client.has_collection(name):
                client.drop_collection(name)
        finally:
            quiet.setLevel(level)
    raise RagError(f"cannot create Milvus collection {name}: {last}") from last


def create_meta_collection(client, name: str) -> None:
    from pymilvus import DataType

    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("part", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus needs a vector field in every collection
    ip = client.prepare_index_params()
    ip.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=s, index_params=ip)


def chunk_row(c, row: int, tokens: Sequence[str], vec) -> dict[str, Any]:
    """The Milvus record of one chunk (the Chunk's fields, its BM25 token text, its vector)."""
    d = c.to_dict()
    for k in ("title", "text", "source"):
        if len(d[k].encode("utf-8")) > MAX_TEXT:
            raise RagError(f"chunk {c.chunk_id}: {k} is longer than Milvus's {MAX_TEXT}-byte VARCHAR limit")
    toks = token_text(tokens)
    if len(toks.encode("utf-8")) > MAX_TEXT:  # cut at a token boundary; the dense side still sees all
        toks = toks.encode("utf-8")[:MAX_TEXT].decode("utf-8", "ignore").rsplit(" ", 1)[0]
    return {**d, "row": int(row), "tokens": toks, "vec": [float(x) for x in vec]}


def row_to_chunk(e: dict):
    from rag.types import Chunk

    return Chunk.from_dict({k: e.get(k) for k in CHUNK_FIELDS if k != "row" and e.get(k) is not None})
