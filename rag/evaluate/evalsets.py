"""Evaluation data in open formats: BEIR-style folders plus an answers file.

A set is a folder:
    corpus.jsonl    {"_id", "title", "text", "metadata"}            one line per document/paragraph
    queries.jsonl   {"_id", "text", "metadata": {...}}              one line per question
    qrels/test.tsv  query-id <TAB> corpus-id <TAB> score             document-level relevance (header line)
    answers.jsonl   {"query_id", "answers": [...], "evidence": [{"doc_id", "quote", "start"?}],
                     "answerable": bool, "type": str, "list_items": [...], "lang": str,
                     "follow_up_of": query_id | null}
Chunk-level relevance is derived from the evidence quotes at evaluation time (a chunk is relevant
when its span contains the quote's span), so labels survive re-chunking.

`import_squad` turns a SQuAD-format file (DRCD, CMRC 2018, or a user's own) into such a set, as
pooled open-domain retrieval QA: every paragraph joins one corpus and each question must find
its own paragraph.

`dev_split` divides a set's questions into a dev half (where thresholds and prompts are tuned)
and a held-out half (reported beside it): the same deterministic split for the refusal
calibration (benchmarks/calibrate_refusal.py) and the eval harness's per-split summaries.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{i}: not valid JSON ({e.msg})") from None


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    n = 0
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    return n


@dataclass
class EvalSet:
    name: str
    corpus: dict[str, dict[str, Any]]  # _id -> {"title", "text", "metadata"}
    queries: dict[str, dict[str, Any]]  # _id -> {"text", "metadata"}
    qrels: dict[str, dict[str, int]]  # query-id -> {corpus-id: score}
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # query-id -> answers row
    path: Path | None = None

    def question(self, qid: str) -> str:
        return self.queries[qid]["text"]


def _sha1(qid: str) -> str:
    return hashlib.sha1(qid.encode()).hexdigest()


def dev_split(
    ids: Sequence[str], labels: Mapping[str, bool], follow_up_of: Mapping[str, str | None] | None = None
) -> tuple[list[str], list[str]]:
    """(dev, held-out) halves of `ids`, deterministic and stratified by `labels` (answerability):
    within each label the ids are ordered by the sha1 of the id and alternate dev, held-out, dev…

    A follow-up turn (`follow_up_of[id]` names the question it follows) then goes to the half of
    the first question of its conversation, so a conversation is never split across the halves.
    Opening questions keep exactly the half the alternation gave them (the split used by
    benchmarks/calibrate_refusal.py before follow-ups were grouped), at the cost of halves that
    can differ in size by the number of follow-ups moved. The split depends on the whole id list:
    pass every question of the set, then select, so a `--limit` run agrees with the full one.

    >>> labels = {"a": True, "b": True, "c": True, "d": False}   # sha1 order of a, b, c: c, a, b
    >>> dev_split(["a", "b", "c", "d"], labels)
    (['c', 'b', 'd'], ['a'])
    >>> dev_split(["a", "b", "c", "d"], labels, {"b": "a"})     # b follows a: b joins a's half
    (['c', 'd'], ['a', 'b'])
    """
    ids = list(dict.fromkeys(ids))
    half: dict[str, bool] = {}  # True: dev
    order: list[str] = []
    for lab in (True, False):
        group = sorted((i for i in ids if bool(labels[i]) == lab), key=_sha1)
        for j, i in enumerate(group):
            half[i] = j % 2 == 0
        order += group
    parents = follow_up_of or {}
    present = set(ids)

    def root(i: str) -> str:
        path = [i]
        while (p := parents.get(path[-1])) and p in present:
            if p in path:  # a cycle (bad data): its smallest id stands for the conversation
                return min(path[path.index(p):])
            path.append(p)
        return path[-1]

    final = {i: half[root(i)] for i in ids}
    return [i for i in order if final[i]], [i for i in order if not final[i]]


def load_beir(path: str | Path, split: str = "test") -> EvalSet:
    p = Path(path)
    for need in ("corpus.jsonl", "queries.jsonl"):
        if not (p / need).exists():
            raise FileNotFoundError(f"{p} is not an evaluation set: {need} is missing")
    corpus = {r["_id"]: r for r in read_jsonl(p / "corpus.jsonl")}
    queries = {r["_id"]: r for r in read_jsonl(p / "queries.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    qp = p / "qrels" / f"{split}.tsv"
    if qp.exists():
        with open(qp, encoding="utf-8") as f:
            for row in csv.reader(f, delimiter="\t"):
                if not row or row[0] == "query-id":
                    continue
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    answers = {r["query_id"]: r for r in read_jsonl(p / "answers.jsonl")} if (p / "answers.jsonl").exists() else {}
    return EvalSet(p.name, corpus, queries, qrels, answers, p)


def write_beir(es: EvalSet, path: str | Path, split: str = "test") -> Path:
    p = Path(path)
    (p / "qrels").mkdir(parents=True, exist_ok=True)
    write_jsonl(p / "corpus.jsonl", ({"_id": k, **v} if "_id" not in v else v for k, v in es.corpus.items()))
    write_jsonl(p / "queries.jsonl", ({"_id": k, **v} if "_id" not in v else v for k, v in es.queries.items()))
    with open(p / "qrels" / f"{split}.tsv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["query-id", "corpus-id", "score"])
        for q, docs in es.qrels.items():
            for d, s in docs.items():
                w.writerow([q, d, s])
    if es.answers:
        write_jsonl(p / "answers.jsonl", es.answers.values())
    return p


def import_squad(path: str | Path, name: str | None = None, prefix: str | None = None) -> EvalSet:
    """SQuAD JSON → pooled open-domain EvalSet (paragraph = corpus document).

    Questions without answers (SQuAD 2.0 style `is_impossible`) are kept as unanswerable.
    Paragraph ids use the dataset's own ids where present (DRCD/CMRC give `id`s), else
    `{prefix}-{article}-{paragraph}`.
    """
    src = Path(path)
    data = json.loads(src.read_text(encoding="utf-8"))
    articles = data["data"] if isinstance(data, dict) else data
    prefix = prefix or (name or src.stem)
    corpus: dict[str, dict[str, Any]] = {}
    queries: dict[str, dict[str, Any]] = {}
    qrels: dict[str, dict[str, int]] = {}
    answers: dict[str, dict[str, Any]] = {}
    for ai, art in enumerate(articles):
        title = art.get("title", "")
        for pi, para in enumerate(art.get("paragraphs", [])):
            pid = str(para.get("id") or f"{prefix}-{ai}-{pi}")
            if pid in corpus:
                pid = f"{pid}-{ai}-{pi}"
            ctx = para["context"]
            corpus[pid] = {"_id": pid, "title": title, "text": ctx, "metadata": {}}
            for qa in para.get("qas", []):
                qid = str(qa["id"])
                ans = [a for a in qa.get("answers", []) if a.get("text")]
                answerable = bool(ans) and not qa.get("is_impossible", False)
                queries[qid] = {"_id": qid, "text": qa["question"], "metadata": {"answerable": answerable}}
                if answerable:
                    qrels[qid] = {pid: 1}
                seen: list[str] = []
                for a in ans:
                    if a["text"] not in seen:
                        seen.append(a["text"])
                answers[qid] = {
                    "query_id": qid,
                    "question": qa["question"],
                    "answers": seen,
                    "evidence": [
                        {"doc_id": pid, "quote": a["text"], "start": a.get("answer_start")} for a in ans[:1]
                    ],
                    "answerable": answerable,
                    "type": "span",
                }
    return EvalSet(name or src.stem, corpus, queries, qrels, answers)
