"""Example questions for a knowledge base's empty chat, drawn from the corpus, not written here.

Sources in order: `cfg.ui.examples`; else the evaluation set of the same name beside the seeds
(`evalsets/<kb>/queries.jsonl`: answerable first questions only, one per relevant document);
else one question per document title. Compromise: the evaluation set is found relative to
`cfg.paths.seeds_dir` (a repository checkout); elsewhere the titles are used.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rag.config import Config

log = logging.getLogger(__name__)


def example_questions(cfg: Config, kb_name: str, services: Any = None, n: int = 4) -> list[str]:
    """Questions to show on first load, drawn from the corpus rather than written here.

    1. `cfg.ui.examples` if configured;
    2. else the evaluation set of the same name (`evalsets/<kb>/queries.jsonl` beside the seeds),
       answerable first questions only (no follow-ups), at most one per relevant document;
    3. else one question per document title of the KB.
    """
    ex = cfg.ui.examples
    if isinstance(ex, str):
        ex = [x.strip() for x in ex.split("|") if x.strip()]
    if ex:
        return list(ex)[:n]
    out: list[str] = []
    es_dir = Path(cfg.paths.seeds_dir).resolve().parent / "evalsets" / kb_name
    if (es_dir / "queries.jsonl").is_file():
        try:
            from rag.evaluate.evalsets import load_beir

            es = load_beir(es_dir)
            seen_docs: set[str] = set()
            for qid, q in es.queries.items():
                a = es.answers.get(qid, {})
                meta = q.get("metadata") or {}
                if a.get("follow_up_of") or meta.get("follow_up_of") or a.get("answerable") is False:
                    continue
                if meta.get("answerable") is False:
                    continue
                docs = tuple(sorted(es.qrels.get(qid, {})))
                if docs and docs[0] in seen_docs:
                    continue
                seen_docs.update(docs[:1])
                text = (q.get("text") or "").strip()
                if text and len(text) <= 60:
                    out.append(text)
                if len(out) >= n:
                    break
        except Exception as e:  # a broken eval set must not break the page
            log.warning("could not read example questions from %s: %s", es_dir, e)
    if not out and services is not None:
        try:
            for d in services.kb(kb_name).documents()[:n]:
                title = (getattr(d, "title", "") or "").strip()
                if title:
                    out.append(f"《{title[:30]}》主要讲了什么？")
        except Exception as e:
            log.info("no example questions from document titles: %s", e)
    return out[:n]
