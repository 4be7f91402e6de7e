"""The answer stage: condense → retrieve → pack → generate → cite, as a stream of typed events.

`Assistant.open(kb, config, llm)` loads the knowledge base (and, lazily, each chat model) once;
`ask()` yields `Status`, `Evidence`, `Token`… and one `Final(Answer)`; the CLI, the web chat,
the REST API and the eval harness all consume these events, so they all behave the same.

Decisions
- Refusal is decided twice: before generation from retrieval evidence (the best passage's
  IDF-weighted coverage of the question's terms, `rag.answer.scoring.evidence_features`, against
  `cfg.answer.refuse_threshold`, calibrated on the seed set by benchmarks/calibrate_refusal.py)
  — which also saves a pointless model call — and after generation when the model itself says
  the documents do not hold the answer and cites nothing valid.
- Tokens are streamed as the model produces them (raw). The `Final` answer is the checked text:
  unsupported and out-of-range markers removed (rag.cite.resolve), converted with OpenCC to the
  question's script (traditional question → traditional answer, simplified → simplified,
  English untouched). Quotes in citations stay verbatim, in the original file's script.
- A list question that names its count ("哪六学") is answered with the quoted enumeration when
  the passages hold one with exactly that many items (rag.answer.lists), without the model.
- An answer with no supported citation is returned with `grounded=False` (never presented as
  grounded); small local models that forget markers get them attributed back when one passage
  clearly supports a sentence (`rag.cite.resolve.resolve(attribute_uncited=True)`).

Layout: this module holds the `Assistant` and its event stream; the pure edges (question and
history checks, backend specs, answer script, JSON shape) live in rag.answer.edges, the original
text for quotes in rag.cite.document_text, the embedding similarity for English questions in
rag.answer.cross_language, the review of a draft and the refusal after it in rag.answer.verdict. Every name other code imports from rag.answer.assistant is re-exported here.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any, Generator, Iterator, Sequence

from rag.answer.edges import (  # noqa: F401 - re-exported: rag.answer.assistant was their home
    MAX_QUESTION_CHARS,
    QuestionError,
    answer_language,
    answer_to_json,
    normalize_history,
    parse_backend,
    to_answer_script,
    validate_question,
)
from rag.answer.edges import backend_kind as _kind
from rag.config import Config, load_config
from rag.config import LLM_BACKENDS as BACKENDS, RETRIEVE_MODES as MODES  # noqa: F401 - one home: rag.config
from rag.cite.document_text import DocumentTextSource
from rag.errors import ConfigError, RagError
from rag.answer.followup import needs_context
from rag.answer.cross_language import COS_FLOOR, COS_FULL, passage_similarity, sentence_similarity
from rag.answer.extractive import extract
from rag.answer.docfacts import fact_passages
from rag.answer.evidence import extend_enumerations
from rag.answer.lists import quoted_list
from rag.limits import LIMITS  # noqa: F401 - re-exported; one home for input limits
from rag.answer.prompts import PROMPT_VERSION, REFUSAL, answer_messages, pack, to_langchain
from rag.answer.refusal import is_refusal, pre_check, refusal_text
from rag.answer.verdict import Verdict, verdict
from rag.types import Answer, Chunk, Event, Evidence, Final, Passage, Status, Token

log = logging.getLogger(__name__)

_ANSWER_LABEL = re.compile(r"^\s*(?:回答|答案|答|Answer)\s*[:：]\s*", re.I)


class Assistant:
    """Question answering over one knowledge base. Create with `Assistant.open(...)`."""

    def __init__(self, kb: Any, config: Config, llm: Any = None):
        self.kb = kb
        self.cfg = config
        self._llm_override = llm
        self._models: dict[tuple[str, str], Any] = {}
        self._models_lock = threading.Lock()
        self.text_source = DocumentTextSource(kb)

    @classmethod
    def open(cls, kb: Any = None, config: Config | None = None, llm: Any = None) -> "Assistant":
        """`kb`: a KnowledgeBase, or a name / folder (opened with `rag.index.kb.KnowledgeBase.open`);
        None means `config.paths.kb`. `llm`: a LangChain chat model that replaces the configured
        one (tests pass `rag.llm.backends.FakeChatModel`)."""
        cfg = config or load_config()
        if kb is None or isinstance(kb, (str, Path)):
            from rag.index.kb import KnowledgeBase

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
                from rag.llm.backends import get_chat_model

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

    COS_FLOOR, COS_FULL = COS_FLOOR, COS_FULL  # rag.answer.cross_language: why these values

    def _encoder(self) -> Any:
        try:
            return getattr(self.kb, "encoder", None)
        except RagError as e:  # no embedding model: lexical only
            log.info("no encoder for cross-language matching: %s", e)
            return None

    def _sentence_similarity(self):
        enc = self._encoder()
        return None if enc is None else sentence_similarity(enc)

    def _passage_similarity(self):
        """statement × passage → [0, 1] (rag.answer.cross_language.passage_similarity), or None."""
        enc = self._encoder()
        return None if enc is None else passage_similarity(enc, self.COS_FLOOR, self.COS_FULL)

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
                from rag.llm.backends import get_chat_model

                llm_cfg = dataclasses.replace(self.cfg.llm, backend=kind, model=key[1])
                self._models[key] = get_chat_model(llm_cfg, self.cfg.paths.models_dir, slot="side")
            return self._models[key]

    def condense(self, question: str, history: Sequence[tuple[str, str]], backend: str) -> str:
        """Standalone form of a follow-up (rag.answer.condense: the model's rewrite when it keeps the
        conversation's entity whole and the question's own words, else the heuristic)."""
        from rag.answer.condense import condense

        if not history:
            return question
        return condense(question, history, self.side_model(backend)).text or question

    def chinese_query(self, question: str, backend: str) -> str:
        """The Chinese retrieval query for an English question ("" when there is none: no model,
        or the translation failed its check); cached per model and question on disk."""
        from rag.answer.translate import to_chinese_query

        model = self.side_model(backend)
        if model is None:
            return ""
        if self._llm_override is not None:  # a caller's model (tests): a cache of its own, nothing persisted
            from rag.answer.translate import QueryCache

            if not hasattr(self, "_query_cache"):
                self._query_cache = QueryCache()
            return to_chinese_query(question, model, self._query_cache)
        # an unwritable cache file only logs a warning (rag.answer.translate.QueryCache)
        return to_chinese_query(question, model, Path(self.cfg.paths.home) / "cache" / "chinese_queries.json")

    def budget(self, question: str, backend: str) -> int:
        """Evidence token budget: the configured one, capped so prompt + answer fit n_ctx."""
        b = self.cfg.answer.context_tokens
        if _kind(backend) == "local":
            from rag.chunk.sections import count_tokens
            from rag.answer.prompts import SYSTEM_PROMPT

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
        passages = extend_enumerations(passages, safe_get if get_chunk else None)
        # "这篇报道的作者是谁?": the document's own date/source line, which no chunk holds
        return fact_passages(question, passages, self.text_source)

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

        # a list question naming its count, whose enumeration the passages hold with exactly that
        # many items, is answered with the quoted enumeration (rag.answer.lists: small models
        # rewrite lists); English questions need an English answer, so the model writes those
        quoted = None
        if not refused and lang != "en" and _kind(backend) != "extractive":
            quoted = quoted_list(standalone, passages)
        yield Status("generate", "生成回答" if not refused else "资料不足，拒绝回答")
        tg = time.perf_counter()
        raw_parts, first, refused = yield from self._generate(standalone, passages, query, lang, backend, refused, reason, t0,
                                                              quoted=quoted)
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
            refused, reason, text, citations, claims, draft = self._check(raw, passages, standalone, query, lang, reason)
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
                         "retrieval_query": query, "quoted_list": quoted is not None, **draft},
        )
        yield Final(answer)
        log.debug("answered %r with %s (prompt %s, evidence %.3f)", q, model_name, PROMPT_VERSION, ev)

    def _generate(
        self, standalone: str, passages: list[Passage], query: str, lang: str, backend: str,
        refused: bool, reason: str, t0: float, quoted: str | None = None,
    ) -> Generator[Token, None, tuple[list[str], float | None, bool]]:
        """Yield the answer's Tokens: the refusal text, the extractive answer (or `quoted`, a
        quoted list) sentence by sentence, or the model's stream. Returns (raw pieces, seconds
        from `t0` to the first token or None, refused — the extractive backend refuses when it
        finds no sentence)."""
        first: float | None = None
        raw_parts: list[str] = []
        if refused:
            raw = refusal_text(lang, reason)
            first = time.perf_counter() - t0
            yield Token(raw)
            raw_parts.append(raw)
        elif _kind(backend) == "extractive" or quoted is not None:
            raw = quoted or extract(standalone, passages, similarity=self._sentence_similarity() if lang == "en" else None)[0]
            if not raw:
                raw, refused = REFUSAL[lang], True
            first = time.perf_counter() - t0
            # stream sentence by sentence so consumers exercise the same token path
            from rag.cite.review import pieces

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
        return raw_parts, first, refused

    def _check(
        self, raw: str, passages: list[Passage], standalone: str, query: str, lang: str, reason: str,
    ) -> Verdict:
        """Review a generated answer (rag.answer.verdict.verdict): the answer shown, or a refusal
        when nothing the model said could be verified."""
        # an English answer over Chinese passages shares no words: embeddings judge it
        similarity = self._passage_similarity() if lang == "en" else None
        return verdict(raw, passages, standalone, query, lang, reason, text_source=self.text_source, similarity=similarity)

    def answer(self, question: str, history: Sequence[Any] = (), **kw: Any) -> Answer:
        """Drain `ask` and return the final Answer."""
        final = None
        for ev in self.ask(question, history, **kw):
            if isinstance(ev, Final):
                final = ev.answer
        assert final is not None  # ask always ends with Final
        return final
