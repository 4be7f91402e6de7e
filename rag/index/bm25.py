"""BM25 for Chinese (either script), English and numbers: the analyzer and a persisted index.

Analyzer (`tokenize`): everything is matched on `rag.text.norm.normalize(text)` — simplified
script, NFKC width folding, lower case — so 東北網 and 东北网 give the same tokens. Then:
  - CJK runs: jieba words (jieba's dictionary is simplified, hence normalise first) PLUS the
    run's overlapping character bigrams (a one-character run gives its unigram). Bigrams catch
    names and terms jieba does not know, and make the score robust to segmentation mistakes.
  - Latin words (lower-cased) and digit runs are tokens; a mixed word like `covid19` also
    yields its letter and digit parts.
  - punctuation and whitespace never become tokens.
Queries additionally drop interrogative words (什么, 哪, 多少, 如何, 为何, 是否, 谁, …, and the
tokens containing them): they are in the question, not in the passage that answers it, and only
add matches with unrelated passages that happen to ask something (measured: +0.2 point R@1 on
DRCD, +0.7 on CMRC, BM25 alone). A question made only of such words keeps them.
Which parts are used is the analyzer name ("jieba+bigram", "bigram", "jieba"), stored with the
index so a query is always tokenised the way the index was; the default was chosen by
measurement (benchmarks/results/retrieval.md).

Index (`BM25Index`): bm25s (a sparse, precomputed BM25 score matrix) over our token ids. We
keep the per-chunk token ids too (`bm25_tokens.npy`), so an incremental update re-tokenises only new
chunks — IDF changes with the corpus, so the score matrix itself is rebuilt from ids (fast).
Queries score every document exactly (`get_scores`), so top-k and ties are deterministic
(higher score, then lower row).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from rag.text.norm import normalize

ANALYZERS = ("jieba+bigram", "bigram", "jieba")
DEFAULT_ANALYZER = "jieba+bigram"

# CJK ideographs (incl. extension A, compatibility, supplementary planes), Latin/digit words.
_RUNS = re.compile(
    r"(?P<cjk>[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]+)"
    r"|(?P<word>[0-9a-z\u00c0-\u024f]+(?:['’][a-z]+)?)"
)
_SPLIT_ALNUM = re.compile(r"[a-z\u00c0-\u024f]+|[0-9]+")

# interrogatives, already in the matching form (simplified); a query token containing one is dropped
QUESTION_WORDS = ("什么", "哪", "多少", "为何", "为什么", "如何", "怎么", "怎样", "是否", "谁", "何时", "何地", "请问")
_QUESTION_TOKENS = frozenset({"几", "吗", "呢", "何"})

_jieba_lock = threading.Lock()
_jieba = None


logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every build at DEBUG on its own handler


def _get_jieba():
    """jieba, initialised once per process (loading its dictionary takes ~1 s)."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


def warm_jieba() -> None:
    """Load jieba's dictionary in the background (≈1 s) so the first question does not wait for it."""
    if _jieba is None:
        threading.Thread(target=_get_jieba, name="jieba-warmup", daemon=True).start()


def _cjk_tokens(run: str, analyzer: str) -> list[str]:
    out: list[str] = []
    if analyzer in ("jieba+bigram", "jieba"):
        out.extend(w for w in _get_jieba().lcut(run, HMM=True) if w.strip())
    if analyzer in ("jieba+bigram", "bigram"):
        if len(run) == 1:
            if analyzer == "bigram":
                out.append(run)  # jieba already emitted the single character
        else:
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


def tokenize(text: str, analyzer: str = DEFAULT_ANALYZER, normalized: bool = False) -> list[str]:
    """Tokens of `text` for BM25 (see the module docstring).

    >>> tokenize("東北網報道：COVID19 疫苗", analyzer="bigram")
    ['东北', '北网', '网报', '报道', 'covid19', 'covid', '19', '疫苗']
    """
    if analyzer not in ANALYZERS:
        raise ValueError(f"unknown BM25 analyzer {analyzer!r}; choose one of {', '.join(ANALYZERS)}")
    t = text if normalized else normalize(text)
    out: list[str] = []
    for m in _RUNS.finditer(t):
        if m.group("cjk"):
            out.extend(_cjk_tokens(m.group("cjk"), analyzer))
        else:
            w = m.group("word")
            out.append(w)
            parts = _SPLIT_ALNUM.findall(w)
            if len(parts) > 1:
                out.extend(parts)
    return out


def tokenize_query(text: str, analyzer: str = DEFAULT_ANALYZER) -> list[str]:
    """`tokenize` minus interrogative words (see the module docstring).

    >>> tokenize_query("冬奥会在哪一年举行？", "bigram")
    ['冬奥', '奥会', '会在', '一年', '年举', '举行']
    """
    toks = tokenize(text, analyzer)
    kept = [t for t in toks if t not in _QUESTION_TOKENS and not any(w in t for w in QUESTION_WORDS)]
    return kept or toks


class Vocab:
    """token → id, growing; ids are dense from 0. The id → token list is built only when needed
    (incremental updates), so opening an index only loads the token → id map."""

    def __init__(self, tokens: Iterable[str] = (), ids: dict[str, int] | None = None):
        self.ids: dict[str, int] = dict(ids) if ids else {}
        self._tokens: list[str] | None = None if ids else []
        for t in tokens:
            self.add(t)

    @property
    def tokens(self) -> list[str]:
        if self._tokens is None:
            toks = [""] * len(self.ids)
            for t, i in self.ids.items():
                toks[i] = t
            self._tokens = toks
        return self._tokens

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, tok: str) -> int:
        i = self.ids.get(tok)
        if i is None:
            toks = self.tokens
            i = self.ids[tok] = len(toks)
            toks.append(tok)
        return i

    def encode(self, toks: Sequence[str]) -> np.ndarray:
        return np.fromiter((self.add(t) for t in toks), dtype=np.int32, count=len(toks))


class BM25Index:
    """A BM25 index over a list of texts (row i = chunk row i).

    Build with `BM25Index.build(texts)` or `BM25Index.from_token_ids(...)`; persist with
    `save(dir)`; open with `BM25Index.load(dir)` (memory-mapped, no re-tokenising).
    """

    FILES = ("bm25_params.json", "bm25_tokens.npy", "bm25_offsets.npy")

    def __init__(self, vocab: Vocab, flat: np.ndarray, offsets: np.ndarray, analyzer: str,
                 k1: float = 1.2, b: float = 0.75, retriever=None):
        self.vocab = vocab
        self.flat = flat  # all chunks' token ids, concatenated
        self.offsets = offsets  # chunk i's ids are flat[offsets[i]:offsets[i+1]]
        self.analyzer = analyzer
        self.k1, self.b = k1, b
        self._retriever = retriever
        if self._retriever is None:
            self._retriever = self._build_matrix()

    # ---- construction
    @classmethod
    def build(cls, texts: Sequence[str], analyzer: str = DEFAULT_ANALYZER, k1: float = 1.2, b: float = 0.75,
              show_progress: bool = False) -> "BM25Index":
        token_lists = (tokenize(t, analyzer) for t in texts)
        if show_progress:
            from tqdm import tqdm

            token_lists = tqdm(token_lists, total=len(texts), desc="BM25 tokens", unit="chunk")
        return cls.from_token_lists(list(token_lists), analyzer, k1, b)

    @classmethod
    def from_token_lists(cls, token_lists: Sequence[Sequence[str]], analyzer: str, k1: float = 1.2,
                         b: float = 0.75) -> "BM25Index":
        vocab = Vocab()
        arrays = [vocab.encode(toks) for toks in token_lists]
        return cls._from_arrays(vocab, arrays, analyzer, k1, b)

    @classmethod
    def _from_arrays(cls, vocab: Vocab, arrays: Sequence[np.ndarray], analyzer: str, k1: float,
                     b: float) -> "BM25Index":
        lens = np.array([len(a) for a in arrays], dtype=np.int64)
        offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        flat = np.concatenate(arrays).astype(np.int32) if arrays else np.zeros(0, np.int32)
        return cls(vocab, flat, offsets, analyzer, k1, b)

    def token_ids(self, row: int) -> np.ndarray:
        return self.flat[self.offsets[row] : self.offsets[row + 1]]

    def tokens(self, row: int) -> list[str]:
        return [self.vocab.tokens[i] for i in self.token_ids(row)]

    def subset(self, rows: Sequence[int], new_token_lists: Sequence[Sequence[str]] = ()) -> "BM25Index":
        """A new index over `rows` of this one (kept token ids, no re-tokenising) followed by new
        chunks given as token lists. Used by incremental updates."""
        vocab = Vocab(ids=self.vocab.ids) if len(self.vocab) else Vocab()
        arrays = [np.asarray(self.token_ids(r)) for r in rows]
        arrays += [vocab.encode(t) for t in new_token_lists]
        return self._from_arrays(vocab, arrays, self.analyzer, self.k1, self.b)

    def _build_matrix(self):
        import bm25s

        n = len(self.offsets) - 1
        retriever = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        if n == 0:
            return retriever
        ids = [self.flat[self.offsets[i] : self.offsets[i + 1]].tolist() for i in range(n)]
        # every vocabulary id is a column, even one no kept chunk uses any more (after deletes):
        # its document frequency is 0 and it simply never scores
        retriever.index((ids, self.vocab.ids), show_progress=False, create_empty_token=False)
        return retriever

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    # ---- persistence
    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        bm_dir = folder / "bm25s"
        if self.n_docs:
            self._retriever.save(str(bm_dir))
        (folder / "bm25_params.json").write_text(
            json.dumps({"analyzer": self.analyzer, "k1": self.k1, "b": self.b, "n_docs": self.n_docs,
                        "n_vocab": len(self.vocab)}, ensure_ascii=False),
            encoding="utf-8",
        )
        np.save(folder / "bm25_tokens.npy", np.asarray(self.flat, dtype=np.int32))
        np.save(folder / "bm25_offsets.npy", np.asarray(self.offsets, dtype=np.int64))

    @classmethod
    def load(cls, folder: str | Path, mmap: bool = True) -> "BM25Index":
        import bm25s

        folder = Path(folder)
        params = json.loads((folder / "bm25_params.json").read_text(encoding="utf-8"))
        # token ids are only read by incremental updates: memory-map them so opening is instant
        flat = np.load(folder / "bm25_tokens.npy", mmap_mode="r" if mmap else None)
        offsets = np.load(folder / "bm25_offsets.npy", mmap_mode="r" if mmap else None)
        if params["n_docs"]:
            retriever = bm25s.BM25.load(str(folder / "bm25s"), mmap=mmap)
            vocab = Vocab(ids=retriever.vocab_dict)  # bm25s keeps the token → id map; no second copy
        else:
            retriever, vocab = bm25s.BM25(), Vocab()
        return cls(vocab, flat, offsets, params["analyzer"], params["k1"], params["b"], retriever)

    # ---- search
    def query_ids(self, query: str) -> list[int]:
        return [self.vocab.ids[t] for t in tokenize_query(query, self.analyzer) if t in self.vocab.ids]

    def get_scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for `query` (zeros when nothing matches)."""
        ids = self.query_ids(query)
        if not ids or self.n_docs == 0:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self._retriever.get_scores_from_ids(ids), dtype=np.float32)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Top-k rows with a positive score, best first; ties → lower row first."""
        return top_k(self.get_scores(query), k)


def top_k(scores: np.ndarray, k: int, positive_only: bool = True) -> list[tuple[int, float]]:
    """Deterministic top-k of a score vector: higher score first, then lower index.

    >>> top_k(np.array([0.5, 2.0, 0.5, 0.0]), 3)
    [(1, 2.0), (0, 0.5), (2, 0.5)]
    """
    if len(scores) == 0 or k <= 0:
        return []
    idx = np.nonzero(scores > 0)[0] if positive_only else np.arange(len(scores))
    s = scores[idx]
    if k < len(idx):
        # keep everything tied with the k-th score so the tie-break below sees all of them
        kth = s[np.argpartition(-s, k - 1)[:k]].min()
        sel = np.nonzero(s >= kth)[0]
    else:
        sel = np.arange(len(idx))
    order = np.lexsort((idx[sel], -s[sel]))[:k]
    return [(int(idx[sel[i]]), float(s[sel[i]])) for i in order]
