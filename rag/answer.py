"""The answer stage: condense → retrieve → pack → generate → cite, as a stream of typed events.

`Assistant.open(kb, config, llm)` loads the knowledge base (and, lazily, each chat model) once;
`ask()` yields `Status`, `Evidence`, `Token`… and one `Final(Answer)`; the CLI, the web chat,
the REST API and the eval harness all consume these events, so they all behave the same.

Decisions
- Refusal is decided twice: before generation from retrieval evidence (the best passage's
  IDF-weighted coverage of the question's terms, `rag.extractive.evidence_score`, against
  `cfg.answer.refuse_threshold`, calibrated on the seed set by benchmarks/calibrate_refusal.py)
  — which also saves a pointless model call — and after generation when the model itself says
  the documents do not hold the answer and cites nothing valid.
- Tokens are streamed as the model produces them (raw). The `Final` answer is the checked text:
  unsupported and out-of-range markers removed (rag.cite), converted with OpenCC to the
  question's script (traditional question → traditional answer, simplified → simplified,
  English untouched). Quotes in citations stay verbatim, in the original file's script.
- An answer with no supported citation is returned with `grounded=False` (never presented as
  grounded); small local models that forget markers get them attributed back when one passage
  clearly supports a sentence (`rag.cite.resolve(attribute_uncited=True)`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from rag.cite import Passage
from rag.config import Config, load_config
from rag.errors import ConfigError, RagError
from rag.condense import needs_context
from rag.extractive import extract
from rag.evidence import extend_enumerations
from rag.prompts import (
    PROMPT_VERSION,
    REFUSAL,
    answer_messages,
    pack,
    to_langchain,
)
from rag.refusal import is_refusal, pre_check, refusal_text
from rag.textnorm import cjk_count, question_language, s2t, t2s
from rag.types import Answer, Chunk, Event, Evidence, Final, Status, Token

log = logging.getLogger(__name__)

from rag.limits import LIMITS  # noqa: E402 - one home for input limits

MAX_QUESTION_CHARS = LIMITS.question_chars
from rag.config import LLM_BACKENDS as BACKENDS, RETRIEVE_MODES as MODES  # noqa: E402 - one home: rag.config

_SCRIPT = {"zh-Hant": "traditional", "zh-Hans": "simplified"}

_UNVERIFIED = {
    "zh-Hans": "（模型给出的回答无法在资料中核实。）",
    "zh-Hant": "（模型給出的回答無法在資料中核實。）",
    "en": "(The model's answer could not be verified against the documents.)",
}

_ANSWER_LABEL = re.compile(r"^\s*(?:回答|答案|答|Answer)\s*[:：]\s*", re.I)


class QuestionError(RagError):
    """The question is empty, too long or not text."""


def validate_question(question: Any) -> str:
    """The question, stripped; a clear QuestionError for empty, whitespace-only or overlong input.

    >>> validate_question("  问题？ ")
    '问题？'
    """
    if not isinstance(question, str):
        raise QuestionError("the question must be text")
    q = question.strip()
    if not q:
        raise QuestionError("the question is empty: type a question, e.g. rag ask \"安达市委实施了哪些措施？\"")
    if len(q) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"the question is {len(q)} characters long; the limit is {MAX_QUESTION_CHARS}. "
            "Ask a shorter question (put long material into the knowledge base instead)."
        )
    return q


def normalize_history(history: Any) -> list[tuple[str, str]]:
    """Accept [(question, answer), …] pairs or chat messages [{"role", "content"}, …] (Gradio's
    format) and return pairs.

    >>> normalize_history([{"role": "user", "content": "问"}, {"role": "assistant", "content": "答"}])
    [('问', '答')]
    >>> normalize_history([("问", None)])
    [('问', '')]
    """
    if not history:
        return []
    pairs: list[tuple[str, str]] = []
    pending: str | None = None
    for item in history:
        if isinstance(item, Mapping):
            role, content = item.get("role"), item.get("content")
            content = content if isinstance(content, str) else ""
            if role == "user":
                if pending is not None:
                    pairs.append((pending, ""))
                pending = content
            elif role == "assistant" and pending is not None:
                pairs.append((pending, content))
                pending = None
        elif isinstance(item, (list, tuple)) and len(item) >= 1:
            q = item[0] if isinstance(item[0], str) else ""
            a = item[1] if len(item) > 1 and isinstance(item[1], str) else ""
            pairs.append((q, a))
        else:
            raise QuestionError("history must be a list of [question, answer] pairs")
    if pending is not None:
        pairs.append((pending, ""))
    return [(q, a) for q, a in pairs if q.strip()]


def answer_language(question: str) -> str:
    """The language/script to answer in: rag.textnorm.question_language, except that an
    English sentence quoting a few Chinese names is still English.

    >>> answer_language("In which year was the 安达 committee founded?"), answer_language("安達在哪裡？")
    ('en', 'zh-Hant')
    """
    lang = question_language(question)
    if lang != "en":
        latin = len(re.findall(r"[A-Za-z]+", question))
        if latin >= 3 and latin > cjk_count(question) / 2:
            return "en"
    return lang


def _simplified_only(ch: str) -> bool:
    return t2s(ch) == ch and s2t(ch) != ch


def to_answer_script(text: str, lang: str) -> str:
    """Put the answer into the question's script without damaging text that already is in it.

    Simplified target: OpenCC t2s on everything (safe). Traditional target: s2t only on the
    clauses that contain a simplified-only character — running s2t over text that is already
    traditional "corrects" legitimate variants (89周年 → 89週年), and answers often quote
    traditional sources verbatim. English: unchanged.

    >>> to_answer_script("座談會在6月25日召開，纪念89周年【1】。", "zh-Hant")
    '座談會在6月25日召開，紀念89週年【1】。'
    >>> to_answer_script("紀念89周年【1】。", "zh-Hant")
    '紀念89周年【1】。'
    >>> to_answer_script("紀念89周年【1】。", "zh-Hans"), to_answer_script("It was 1949.", "en")
    ('纪念89周年【1】。', 'It was 1949.')
    """
    if lang == "zh-Hans":
        return t2s(text)
    if lang != "zh-Hant":
        return text
    pieces = re.split(r"(?<=[。！？!?；;，,：:\n])", text)
    return "".join(s2t(p) if any(_simplified_only(c) for c in p) else p for p in pieces)


class _TextSource:
    """Original document text for exact quotes, fetched from the KB and kept for a few docs."""

    def __init__(self, kb: Any, size: int = 32):
        self.kb = kb
        self.size = size
        self.cache: OrderedDict[str, str | None] = OrderedDict()
        self.lock = threading.Lock()
        self.repo_root = Path(__file__).resolve().parent.parent  # the default seeds/ live here

    def _fetch(self, doc_id: str) -> str | None:
        for name in ("document_text", "original_text"):
            fn = getattr(self.kb, name, None)
            if callable(fn):
                try:
                    t = fn(doc_id)
                    if isinstance(t, str):
                        return t
                except Exception as e:  # a missing file loses the exact quote, not the answer
                    log.debug("no original text for %s: %s", doc_id, e)
        fn = getattr(self.kb, "get_document", None)
        if callable(fn):
            try:
                doc = fn(doc_id)
                t = getattr(doc, "text", None)
                if isinstance(t, str):
                    return t
            except Exception as e:
                log.debug("no original document for %s: %s", doc_id, e)
        return None

    def _from_file(self, chunk: Chunk) -> str | None:
        """Re-read the indexed file (the index stores cleaned chunks, not the original text).
        The file's sha256 must still match the manifest, else the spans would point into a
        different text and no exact quote is given."""
        if not chunk.source:
            return None
        from rag.ingest import load_file

        expected = None
        try:
            for d in (getattr(self.kb, "manifest", None) or {}).get("documents", []):
                if d.get("doc_id") == chunk.doc_id:
                    expected = d.get("sha256")
                    break
        except Exception:
            expected = None
        p = Path(chunk.source)
        cands = [p] if p.is_absolute() else [Path.cwd() / p, self.repo_root / p]
        for c in cands:
            if not c.is_file():
                continue
            try:
                doc = load_file(c)
            except RagError as e:
                log.debug("cannot re-read %s: %s", c, e)
                continue
            if expected and doc.metadata.get("sha256") not in (None, expected):
                log.info("%s changed since it was indexed; quotes fall back to the indexed text", c)
                return None
            return doc.text
        return None

    def __call__(self, chunk: Chunk) -> str | None:
        with self.lock:
            if chunk.doc_id in self.cache:
                self.cache.move_to_end(chunk.doc_id)
                text = self.cache[chunk.doc_id]
            else:
                text = self._fetch(chunk.doc_id)
                if text is None:
                    text = self._from_file(chunk)
                self.cache[chunk.doc_id] = text
                while len(self.cache) > self.size:
                    self.cache.popitem(last=False)
        if text is None or len(text) < chunk.end:
            return None
        return text


def parse_backend(spec: str) -> tuple[str, str]:
    """`BACKEND[:MODEL]` → (backend, model or ""); ConfigError for an unknown backend.

    >>> parse_backend(" Local:qwen2.5-0.5b ")
    ('local', 'qwen2.5-0.5b')
    >>> parse_backend("extractive")
    ('extractive', '')
    """
    kind, _, model = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in BACKENDS:
        raise ConfigError(f"unknown LLM backend {kind!r}; choose one of: {', '.join(BACKENDS)} (optionally BACKEND:MODEL)")
    if model and kind == "extractive":
        raise ConfigError("the extractive backend takes no model")
    return kind, model


def _kind(backend: str) -> str:
    """`local:qwen2.5-0.5b` → `local`."""
    return backend.partition(":")[0]


class Assistant:
    """Question answering over one knowledge base. Create with `Assistant.open(...)`."""

    def __init__(self, kb: Any, config: Config, llm: Any = None):
        self.kb = kb
        self.cfg = config
        self._llm_override = llm
        self._models: dict[tuple[str, str], Any] = {}
        self._models_lock = threading.Lock()
        self.text_source = _TextSource(kb)

    @classmethod
    def open(cls, kb: Any = None, config: Config | None = None, llm: Any = None) -> "Assistant":
        """`kb`: a KnowledgeBase, or a name / folder (opened with `rag.kb.KnowledgeBase.open`);
        None means `config.paths.kb`. `llm`: a LangChain chat model that replaces the configured
        one (tests pass `rag.llm.FakeChatModel`)."""
        cfg = config or load_config()
        if kb is None or isinstance(kb, (str, Path)):
            from rag.kb import KnowledgeBase

            kb = KnowledgeBase.open(str(kb) if kb is not None else cfg.paths.kb, cfg)
        return cls(kb, cfg, llm)

    # ------------------------------------------------------------ models

    def backend(self, llm_backend: str | None = None) -> str:
        """The backend spec for a call: `local`, `openai`, `extractive`, `fake`, or `BACKEND:MODEL`
        (e.g. `local:qwen2.5-0.5b`) to use another model than the configured one for this call
        only — the eval harness compares models side by side this way."""
        kind, model = parse_backend(llm_backend or self.cfg.llm.backend or "")
        return f"{kind}:{model}" if model else kind

    def _model_of(self, backend: str) -> str:
        return backend.partition(":")[2] or self.cfg.llm.model

    def chat_model(self, backend: str) -> Any:
        """The chat model for `backend` (loaded once and reused), or None for extractive."""
        kind = _kind(backend)
        if kind == "extractive":
            return None
        if self._llm_override is not None:
            return self._llm_override
        key = (kind, self._model_of(backend))
        with self._models_lock:
            if key not in self._models:
                from rag.llm import get_chat_model

                llm_cfg = dataclasses.replace(self.cfg.llm, backend=kind, model=key[1])
                self._models[key] = get_chat_model(llm_cfg, self.cfg.paths.models_dir)
            return self._models[key]

    def model_name(self, backend: str) -> str:
        if _kind(backend) == "extractive":
            return "extractive"
        if self._llm_override is not None:
            return str(getattr(self._llm_override, "model_name", None) or type(self._llm_override).__name__)
        return f"{_kind(backend)}:{self._model_of(backend)}"

    # ------------------------------------------------------------ embeddings (cross-language)

    # e5 cosines of unrelated text sit around 0.7-0.75 and of a statement and its source sentence
    # above ~0.85; the support score maps [COS_FLOOR, COS_FULL] linearly onto [0, 1]. A heuristic
    # (not calibrated on a cross-language set), used only for English questions.
    COS_FLOOR, COS_FULL = 0.75, 0.9

    def _encoder(self) -> Any:
        try:
            return getattr(self.kb, "encoder", None)
        except RagError as e:  # no embedding model: lexical only
            log.info("no encoder for cross-language matching: %s", e)
            return None

    def _sentence_similarity(self):
        enc = self._encoder()
        if enc is None:
            return None

        def sim(question: str, sentences: Sequence[str]) -> list[float]:
            q = enc.encode_queries([question])[0]
            return [float(v) for v in enc.encode_passages(list(sentences)) @ q]

        return sim

    def _passage_similarity(self):
        """statement × passage → [0, 1]: the best sentence's embedding cosine, rescaled; each
        passage's sentence vectors and each statement's vector are computed once per answer."""
        pair = self._encoder()
        if pair is None:
            return None
        enc = pair
        passages: dict[str, Any] = {}
        statements: dict[str, Any] = {}  # a statement is checked against several passages

        def sim(statement: str, passage_text: str) -> float:
            from rag.cite import split_sentences

            if passage_text not in passages:
                sents = [passage_text[a:b] for a, b in split_sentences(passage_text)] or [passage_text]
                passages[passage_text] = enc.encode_passages(sents)
            if statement not in statements:
                statements[statement] = enc.encode_queries([statement])[0]
            cos = float((passages[passage_text] @ statements[statement]).max())
            return max(0.0, min(1.0, (cos - self.COS_FLOOR) / (self.COS_FULL - self.COS_FLOOR)))

        return sim

    # ------------------------------------------------------------ steps

    def side_model(self, backend: str) -> Any:
        """The chat model for short side calls (rewriting a follow-up, translating a question):
        the answer model in its own llama.cpp context for the local backend, so the answer
        prompt's cached prefix (the fixed system prompt) is not evicted; None for extractive."""
        kind = _kind(backend)
        if kind == "extractive":
            return None
        if self._llm_override is not None or kind != "local":
            return self.chat_model(backend)
        try:
            return self._side_model(backend)
        except RagError as e:  # no side context: the heuristic condenser, no translation
            log.warning("no side model for %s: %s", backend, e)
            return None

    def _side_model(self, backend: str) -> Any:
        kind = _kind(backend)
        key = ("local-side", self._model_of(backend))
        with self._models_lock:
            if key not in self._models:
                from rag.llm import get_chat_model

                llm_cfg = dataclasses.replace(self.cfg.llm, backend=kind, model=key[1])
                self._models[key] = get_chat_model(llm_cfg, self.cfg.paths.models_dir, slot="side")
            return self._models[key]

    def condense(self, question: str, history: Sequence[tuple[str, str]], backend: str) -> str:
        """Standalone form of a follow-up (rag.condense: the model's rewrite when it keeps the
        conversation's entity whole and the question's own words, else the heuristic)."""
        from rag.condense import condense

        if not history:
            return question
        return condense(question, history, self.side_model(backend)).text or question

    def chinese_query(self, question: str, backend: str) -> str:
        """The Chinese retrieval query for an English question ("" when there is none: no model,
        or the translation failed its check); cached per model and question on disk."""
        from rag.condense import to_chinese_query

        model = self.side_model(backend)
        if model is None:
            return ""
        if self._llm_override is not None:  # a caller's model (tests): a cache of its own, nothing persisted
            from rag.condense import QueryCache

            if not hasattr(self, "_query_cache"):
                self._query_cache = QueryCache()
            return to_chinese_query(question, model, self._query_cache)
        # an unwritable cache file only logs a warning (rag.condense.QueryCache)
        return to_chinese_query(question, model, Path(self.cfg.paths.home) / "cache" / "chinese_queries.json")

    def budget(self, question: str, backend: str) -> int:
        """Evidence token budget: the configured one, capped so prompt + answer fit n_ctx."""
        b = self.cfg.answer.context_tokens
        if _kind(backend) == "local":
            from rag.chunking import count_tokens
            from rag.prompts import SYSTEM_PROMPT

            room = self.cfg.llm.n_ctx - self.cfg.llm.max_tokens - count_tokens(SYSTEM_PROMPT) - count_tokens(question) - 64
            b = min(b, max(200, room))
        return b

    def retrieve(self, question: str, *, k: int | None, mode: str | None, backend: str) -> list[Passage]:
        hits = self.kb.search(question, k=k or self.cfg.retrieve.k, mode=mode)
        get_chunk = getattr(self.kb, "get_chunk", None)

        def safe_get(cid: str) -> Chunk | None:
            try:
                return get_chunk(cid) if get_chunk else None
            except (KeyError, IndexError, RagError):
                return None

        passages = pack(
            hits,
            self.budget(question, backend),
            max_passages=self.cfg.answer.max_passages,
            get_chunk=safe_get,
        )
        # an enumeration cut by a chunk boundary is completed from the neighbouring chunk
        return extend_enumerations(passages, safe_get if get_chunk else None)

    # ------------------------------------------------------------ the event stream

    def ask(
        self,
        question: str,
        history: Sequence[Any] = (),
        *,
        llm_backend: str | None = None,
        k: int | None = None,
        mode: str | None = None,
    ) -> Iterator[Event]:
        """Answer `question` (with the conversation so far) as a stream of events; see module doc."""
        q = validate_question(question)
        hist = normalize_history(history)
        backend = self.backend(llm_backend)
        if mode is not None and mode not in MODES:
            raise ConfigError(f"unknown retrieval mode {mode!r}; choose one of: {', '.join(MODES)}")
        if k is not None and (not isinstance(k, int) or k < 1 or k > 100):
            raise ConfigError(f"k must be an integer between 1 and 100 (got {k!r})")
        return self._ask(q, hist, backend, k, mode)

    def _ask(self, q: str, hist: list[tuple[str, str]], backend: str, k: int | None, mode: str | None) -> Iterator[Event]:
        cfg = self.cfg.answer
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        lang = answer_language(q)
        standalone = q
        if hist and cfg.condense and needs_context(q):
            yield Status("condense", "改写追问为独立问题")
            tc = time.perf_counter()
            standalone = self.condense(q, hist, backend)
            timings["condense"] = time.perf_counter() - tc
        query = standalone
        if lang == "en":
            # Chinese documents: BM25 cannot match English words and e5-small aligns languages
            # weakly, so the question is searched in Chinese (the answer stays English)
            yield Status("translate", "把英文问题译成中文检索词")
            tt = time.perf_counter()
            query = self.chinese_query(standalone, backend) or standalone
            timings["translate"] = time.perf_counter() - tt
        yield Status("retrieve", f"检索：{query}")
        tr = time.perf_counter()
        passages = self.retrieve(query, k=k, mode=mode, backend=backend)
        timings["retrieve"] = time.perf_counter() - tr
        yield Evidence(tuple(p.hit for p in passages))
        pre = pre_check(standalone, passages, threshold=cfg.refuse_threshold, feature=cfg.refuse_feature, lang=lang,
                        use_asked_value=cfg.refuse_asked_value)
        ev = pre.features.get("evidence", 0.0)
        refused, reason = pre.refuse, pre.reason
        model_name = self.model_name(backend)

        yield Status("generate", "生成回答" if not refused else "资料不足，拒绝回答")
        tg = time.perf_counter()
        first: float | None = None
        raw_parts: list[str] = []
        if refused:
            raw = refusal_text(lang, reason)
            first = time.perf_counter() - t0
            yield Token(raw)
            raw_parts.append(raw)
        elif _kind(backend) == "extractive":
            raw, _ = extract(standalone, passages, similarity=self._sentence_similarity() if lang == "en" else None)
            if not raw:
                raw, refused = REFUSAL[lang], True
            first = time.perf_counter() - t0
            # stream sentence by sentence so consumers exercise the same token path
            from rag.review import pieces

            for piece in pieces(raw):
                yield Token(piece)
            raw_parts.append(raw)
        else:
            model = self.chat_model(backend)
            budget = self.cfg.answer.local_context_tokens if _kind(backend) == "local" else None
            msgs = to_langchain(answer_messages(standalone, passages, lang, budget, query=query))
            try:
                for chunk in model.stream(msgs):
                    piece = chunk.content if isinstance(chunk.content, str) else str(chunk.content)
                    if not piece:
                        continue
                    if first is None:
                        first = time.perf_counter() - t0
                    raw_parts.append(piece)
                    yield Token(piece)
            except RagError:
                raise
            except Exception as e:
                raise RagError(f"the {backend} model failed while answering: {e}") from None
        timings["generate"] = time.perf_counter() - tg
        timings["first_token"] = first if first is not None else time.perf_counter() - t0
        # the system prompt's worked example ends in "回答：…"; a model may echo the label
        raw = _ANSWER_LABEL.sub("", "".join(raw_parts), count=1)

        yield Status("cite", "核对引用")
        citations: list = []
        claims: list = []
        draft: dict = {}
        if refused:
            text = refusal_text(lang, reason)
        else:
            from rag.review import review

            shown, citations, claims = review(
                raw,
                passages,
                standalone,
                text_source=self.text_source,
                # an English answer over Chinese passages shares no words: embeddings judge it
                similarity=self._passage_similarity() if lang == "en" else None,
                attribute=True,
                convert=lambda t: to_answer_script(t, lang),
                query=query if lang == "en" and query != standalone else "",
            )
            if not any(c.verified for c in claims):
                # nothing the model said could be verified (or it declined): refuse, saying why;
                # the draft and why it failed stay in the diagnostics (eval, logs), not the answer
                draft = {"draft": raw[:2000], "draft_claims": [c.to_dict() for c in claims],
                         "draft_citations": [{"n": c.n, "supported": c.supported, "missing": c.metadata.get("missing"),
                                              "reason": c.metadata.get("reason")} for c in citations]}
                model_declined = is_refusal(raw)
                reason = "" if model_declined else _UNVERIFIED.get(lang, _UNVERIFIED["zh-Hans"])
                refused, text, citations, claims = True, refusal_text(lang, reason), [], []
            else:
                text = shown.strip()
        timings["total"] = time.perf_counter() - t0
        answer = Answer(
            question=q,
            text=text,
            citations=tuple(citations),
            refused=refused,
            hits=tuple(p.hit for p in passages),
            timings={k_: round(v, 4) for k_, v in timings.items()},
            model=model_name,
            standalone_question=standalone,
            grounded=(not refused) and any(c.verified for c in claims),
            claims=tuple(claims),
            refusal_reason=reason if refused else "",
            diagnostics={**pre.features, "pre_refused": pre.refuse, "model_declined": bool(not pre.refuse and is_refusal(raw)),
                         "retrieval_query": query, **draft},
        )
        yield Final(answer)
        log.debug("answered %r with %s (prompt %s, evidence %.3f)", q, model_name, PROMPT_VERSION, ev)

    def answer(self, question: str, history: Sequence[Any] = (), **kw: Any) -> Answer:
        """Drain `ask` and return the final Answer."""
        final = None
        for ev in self.ask(question, history, **kw):
            if isinstance(ev, Final):
                final = ev.answer
        assert final is not None  # ask always ends with Final
        return final


def answer_to_json(answer: Answer) -> dict[str, Any]:
    """The JSON shape of `rag ask --json` and `POST /ask`: only supported citations under
    `citations` (the ones shown); rejected ones (with their support score) under
    `rejected_citations`."""

    def cite(c: Any) -> dict[str, Any]:
        return {
            "n": c.n,
            "chunk_id": c.chunk_id,
            "doc_id": c.doc_id,
            "title": c.title,
            "section": list(c.section),
            "source": c.source,
            "date": str(c.metadata.get("date") or ""),
            "start": c.start,
            "end": c.end,
            "quote": c.quote,
            "quote_start": c.quote_start,
            "quote_end": c.quote_end,
            "support": c.support,
            "statement": c.statement,
            "auto": bool(c.metadata.get("auto", False)),
        }

    return {
        "question": answer.question,
        "standalone_question": answer.standalone_question or answer.question,
        "answer": answer.text,
        "refused": answer.refused,
        "grounded": answer.grounded,
        "citations": [cite(c) for c in answer.citations if c.supported],
        "rejected_citations": [cite(c) for c in answer.citations if not c.supported],
        "claims": [c.to_dict() for c in answer.claims],
        "refusal_reason": answer.refusal_reason,
        "hits": [h.to_dict() for h in answer.hits],
        "timings": dict(answer.timings),
        "model": answer.model,
        "prompt_version": PROMPT_VERSION,
    }
