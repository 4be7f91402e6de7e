"""👍/👎 feedback on answers, stored in SQLite and exportable as new evaluation questions.

One row per (browser session, turn): clicking 👍 then 👎 on the same answer updates the row,
retracting the vote sets the rating to 0. Each row keeps everything needed to turn it into an
evaluation item later: the question (and the condensed standalone question), the answer with its
citations and retrieved passages (`Answer.to_dict()`), the per-session settings (KB, backend,
model, k, mode) and the optional comment.

`export_evalset()` writes a BEIR-style folder readable by `rag.evaluate.evalsets.load_beir`:
  queries.jsonl  one question per rated answer (metadata: rating, comment, kb, model, settings)
  answers.jsonl  👍 answered → the answer (markers removed) with its supported citations as
                 evidence quotes; 👍 refused → answerable=false; 👎 → needs_review=true and the
                 rejected answer, so a person writes the reference answer before it is scored
  qrels/test.tsv cited documents of 👍 answers (document-level relevance, as load_beir expects)
  corpus.jsonl   the cited documents' passages we have (marked partial: the KB holds the rest)

Deliberate compromise: a connection per call (sqlite3 connections are not shared across
threads, and Gradio runs handlers on a thread pool); WAL mode keeps writers from blocking readers.
"""

from __future__ import annotations

import json
import sqlite3
import time
import zipfile
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

from rag.evaluate.evalsets import write_jsonl
from rag.text.markers import strip_markers

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created     REAL NOT NULL,
    updated     REAL NOT NULL,
    session     TEXT NOT NULL,
    turn        INTEGER NOT NULL,
    kb          TEXT NOT NULL DEFAULT '',
    question    TEXT NOT NULL,
    answer      TEXT NOT NULL,
    refused     INTEGER NOT NULL DEFAULT 0,
    model       TEXT NOT NULL DEFAULT '',
    rating      INTEGER NOT NULL,          -- +1 👍, -1 👎, 0 retracted
    comment     TEXT NOT NULL DEFAULT '',
    citations   TEXT NOT NULL DEFAULT '[]', -- JSON list of Citation.to_dict()
    answer_json TEXT NOT NULL DEFAULT '{}', -- JSON Answer.to_dict() (hits included)
    config      TEXT NOT NULL DEFAULT '{}', -- JSON per-session settings
    UNIQUE(session, turn)
);
"""

def _as_dict(answer: Any) -> dict[str, Any]:
    if answer is None:
        return {}
    if isinstance(answer, Mapping):
        return dict(answer)
    return answer.to_dict()


class FeedbackStore:
    """SQLite file of ratings. `FeedbackStore.for_config(cfg)` puts it under `cfg.paths.home`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @classmethod
    def for_config(cls, cfg: Any) -> "FeedbackStore":
        return cls(Path(cfg.paths.home) / "feedback.sqlite3")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=15)
        db.row_factory = sqlite3.Row
        return db

    def record(
        self,
        *,
        session: str,
        turn: int,
        question: str,
        answer: Any,
        rating: int,
        kb: str = "",
        comment: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> int:
        """Insert or update the rating of one answer; returns the row id.

        `answer` is an `rag.types.Answer` (or its `to_dict()`). `comment=None` keeps an existing
        comment (a vote change does not erase what the user wrote)."""
        if rating not in (-1, 0, 1):
            raise ValueError(f"rating must be -1, 0 or 1, not {rating!r}")
        a = _as_dict(answer)
        now = time.time()
        row = (
            now,
            now,
            session,
            int(turn),
            kb,
            question,
            a.get("answer", ""),
            int(bool(a.get("refused", False))),
            a.get("model", ""),
            int(rating),
            comment or "",
            json.dumps(a.get("citations", []), ensure_ascii=False),
            json.dumps(a, ensure_ascii=False, default=str),
            json.dumps(dict(config or {}), ensure_ascii=False, default=str),
        )
        with closing(self._connect()) as db, db:
            db.execute(
                """INSERT INTO feedback (created, updated, session, turn, kb, question, answer, refused, model,
                                         rating, comment, citations, answer_json, config)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT(session, turn) DO UPDATE SET
                     updated=excluded.updated, rating=excluded.rating, kb=excluded.kb,
                     question=excluded.question, answer=excluded.answer, refused=excluded.refused,
                     model=excluded.model, citations=excluded.citations,
                     answer_json=excluded.answer_json, config=excluded.config,
                     comment=CASE WHEN ? IS NULL THEN feedback.comment ELSE excluded.comment END""",
                (*row, comment),
            )
            cur = db.execute("SELECT id FROM feedback WHERE session=? AND turn=?", (session, int(turn)))
            return int(cur.fetchone()[0])

    def set_comment(self, fid: int, comment: str) -> None:
        with closing(self._connect()) as db, db:
            cur = db.execute(
                "UPDATE feedback SET comment=?, updated=? WHERE id=?", (comment.strip(), time.time(), int(fid))
            )
            if cur.rowcount == 0:
                raise KeyError(f"no feedback row {fid}")

    def get(self, fid: int) -> dict[str, Any]:
        with closing(self._connect()) as db:
            r = db.execute("SELECT * FROM feedback WHERE id=?", (int(fid),)).fetchone()
        if r is None:
            raise KeyError(f"no feedback row {fid}")
        return self._row(r)

    def rows(self, kb: str | None = None, *, include_retracted: bool = False) -> list[dict[str, Any]]:
        sql = "SELECT * FROM feedback WHERE 1=1"
        args: list[Any] = []
        if kb:
            sql += " AND kb=?"
            args.append(kb)
        if not include_retracted:
            sql += " AND rating != 0"
        with closing(self._connect()) as db:
            return [self._row(r) for r in db.execute(sql + " ORDER BY id", args)]

    def counts(self) -> dict[str, int]:
        with closing(self._connect()) as db:
            up, down = db.execute(
                "SELECT COALESCE(SUM(rating=1),0), COALESCE(SUM(rating=-1),0) FROM feedback"
            ).fetchone()
        return {"up": int(up), "down": int(down)}

    @staticmethod
    def _row(r: sqlite3.Row) -> dict[str, Any]:
        d = dict(r)
        for k in ("citations", "answer_json", "config"):
            d[k] = json.loads(d[k] or "null")
        return d


def export_evalset(store: FeedbackStore, out_dir: str | Path, *, kb: str | None = None) -> Path:
    """Write the rated answers as a BEIR-style evaluation set (see the module docstring).

    Returns the folder. Question ids are `fb-<row id>`, stable across exports."""
    out = Path(out_dir)
    queries: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    qrels: list[tuple[str, str]] = []
    corpus: dict[str, dict[str, Any]] = {}
    for r in store.rows(kb):
        qid = f"fb-{r['id']}"
        a = r["answer_json"] or {}
        up = r["rating"] > 0
        refused = bool(r["refused"])
        queries.append(
            {
                "_id": qid,
                "text": r["question"],
                "metadata": {
                    "source": "feedback",
                    "rating": r["rating"],
                    "comment": r["comment"],
                    "kb": r["kb"],
                    "model": r["model"],
                    "settings": r["config"],
                    "standalone_question": a.get("standalone_question", r["question"]),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(r["created"])),
                },
            }
        )
        cits = [c for c in (r["citations"] or []) if c.get("supported", True)]
        row: dict[str, Any] = {
            "query_id": qid,
            "question": r["question"],
            "answers": [strip_markers(r["answer"] or "").strip()] if up and not refused else [],
            "evidence": [
                {"doc_id": c["doc_id"], "quote": c.get("quote", ""), "start": c.get("quote_start")} for c in cits
            ]
            if up and not refused
            else [],
            # 👍 on a refusal confirms the question is not answerable from the KB; a 👎 means the
            # user expected an answer, so it stays answerable until someone reviews it
            "answerable": not (up and refused),
            "type": "feedback",
            "follow_up_of": None,
            "needs_review": not up,
        }
        if not up:
            row["rejected_answer"] = r["answer"]
            row["comment"] = r["comment"]
        answers.append(row)
        if up and not refused:
            hit_text = {h.get("chunk_id"): h.get("text", "") for h in a.get("hits", [])}
            for c in cits:
                qrels.append((qid, c["doc_id"]))
                doc = corpus.setdefault(
                    c["doc_id"],
                    {"_id": c["doc_id"], "title": c.get("title", ""), "text": "", "metadata": {"kb": r["kb"], "partial": True}},
                )
                t = hit_text.get(c.get("chunk_id"), "")
                if t and t not in doc["text"]:
                    doc["text"] = (doc["text"] + "\n\n" + t).strip()
    write_jsonl(out / "queries.jsonl", queries)
    write_jsonl(out / "answers.jsonl", answers)
    write_jsonl(out / "corpus.jsonl", corpus.values())
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with open(out / "qrels" / "test.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q, d in dict.fromkeys(qrels):
            f.write(f"{q}\t{d}\t1\n")
    return out


def export_zip(store: FeedbackStore, zip_path: str | Path, *, kb: str | None = None) -> Path:
    """`export_evalset` packed into one zip file (what the web page offers for download)."""
    zip_path = Path(zip_path)
    folder = zip_path.with_suffix("")
    export_evalset(store, folder, kb=kb)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, Path(folder.name) / p.relative_to(folder))
    return zip_path
