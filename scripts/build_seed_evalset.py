"""Build the seed evaluation set (BEIR files + answers.jsonl) from one hand-written source file.

    python3 scripts/build_seed_evalset.py                 # evalsets/seeds/source.yaml -> evalsets/seeds/
    python3 scripts/build_seed_evalset.py --check         # exit 1 if the built files are stale
    python3 scripts/build_seed_evalset.py --stats         # counts per type/language/document (Markdown)

Why a source file: annotators edit one readable YAML list (question, answers, evidence quotes);
everything mechanical is derived here and checked, so a hand edit cannot silently break the set:

- evidence `start`/`end` offsets are computed by searching the quote in the seed file as decoded
  UTF-8 (a quote must occur exactly once, or carry `occurrence: n`); a quote that is not a verbatim
  substring fails the build with the nearest real passage, found on the normalised form
  (rag.text.norm.normalize_answer), so OCR quirks such as ‚…‛ or ASCII commas are easy to fix;
- the question language is detected (rag.text.norm.question_language) and must agree with `lang`
  when one is given; Chinese reference answers and list items written in the other script are
  converted into the question's script with OpenCC (t2s, or s2tw for the Taiwan-standard forms
  the traditional seeds use); matching folds scripts anyway, but people read the answers;
- ids are unique, `follow_up_of` points to an earlier question, answerable questions have answers
  and evidence, unanswerable ones have neither but list `absent_terms`: what an answer would have
  to contain (a name, a year, a figure), each checked to occur in no seed in either script.

The output is deterministic (sorted as in the source), so `--check` can compare bytes.
"""

from __future__ import annotations

import argparse
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a plain script from a fresh clone
    sys.path.insert(0, str(ROOT))

from rag.errors import RagError  # noqa: E402
from rag.evaluate.evalsets import EvalSet, write_beir  # noqa: E402
from rag.text.norm import detect_script, normalize_answer, question_language, to_script  # noqa: E402

TYPES = ("fact", "list", "how", "why", "cross-script", "english", "follow-up", "unanswerable")
KINDS = ("fact", "list", "how", "why")
LANG_SCRIPT = {"zh-Hans": "simplified", "zh-Hant": "traditional"}


class EvalsetSourceError(RagError):
    """The hand-written source of an evaluation set is inconsistent (message says where and how)."""


def load_source(path: str | Path) -> dict[str, Any]:
    import yaml  # PyYAML: the source is YAML because people edit it by hand

    p = Path(path)
    if not p.exists():
        raise EvalsetSourceError(f"{p}: source file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:  # the parser's message names the line and column
        raise EvalsetSourceError(f"{p}: not valid YAML: {e}") from None
    except UnicodeDecodeError as e:
        raise EvalsetSourceError(f"{p}: not UTF-8 ({e.reason} at byte {e.start})") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("docs"), dict)
        or not isinstance(data.get("questions"), list)
    ):
        raise EvalsetSourceError(f"{p}: expected a mapping with `docs` (a mapping) and `questions` (a list)")
    return data


def _norm_map(text: str) -> tuple[str, list[int]]:
    """Normalised text plus, for each of its characters, the index of the original character.

    Normalises character by character (so the alignment is exact); used only for error hints."""
    out: list[str] = []
    idx: list[int] = []
    for i, ch in enumerate(text):
        for c in normalize_answer(ch):
            out.append(c)
            idx.append(i)
    return "".join(out), idx


def nearest_passage(text: str, quote: str) -> str | None:
    """The verbatim passage of `text` whose normalised form equals the normalised `quote`, if any.

    >>> nearest_passage("按:6月25日,省委召開", "6月25日，省委召开")
    '6月25日,省委召開'
    """
    nq = normalize_answer(quote)
    if not nq:
        return None
    nt, idx = _norm_map(text)
    k = nt.find(nq)
    if k < 0:
        return None
    return text[idx[k] : idx[k + len(nq) - 1] + 1]


def locate(text: str, quote: str, occurrence: int | None, where: str) -> int:
    """Offset of `quote` in `text`; it must be unique unless `occurrence` (1-based) is given."""
    hits = []
    start = text.find(quote)
    while start >= 0:
        hits.append(start)
        start = text.find(quote, start + 1)
    if not hits:
        hint = nearest_passage(text, quote)
        msg = f"{where}: quote not found verbatim: {quote!r}"
        if hint:
            msg += f"\n    the document has: {hint!r}"
        raise EvalsetSourceError(msg)
    if occurrence is not None:
        if not 1 <= occurrence <= len(hits):
            raise EvalsetSourceError(f"{where}: occurrence {occurrence} but the quote occurs {len(hits)} time(s)")
        return hits[occurrence - 1]
    if len(hits) > 1:
        raise EvalsetSourceError(
            f"{where}: quote occurs {len(hits)} times (offsets {hits}); lengthen it or add `occurrence: n`"
        )
    return hits[0]


def _as_list(v: Any) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


@lru_cache(maxsize=None)
def _s2tw():
    import opencc

    # Taiwan-standard forms (為, 群, 裡) are what the seeds' traditional pages use; plain s2t
    # would give 爲/羣. Metrics fold scripts anyway; this is for the people reading the answers.
    return opencc.OpenCC("s2tw.json")


def _in_script(values: list[str], lang: str) -> list[str]:
    """Chinese values in the question's script; values already in it are kept verbatim (so an
    answer copied from a traditional page is not re-converted into other variant forms)."""
    script = LANG_SCRIPT.get(lang)
    out: list[str] = []
    for v in map(str, values):
        if script and detect_script(v) not in (script, "other"):
            v = _s2tw().convert(v) if script == "traditional" else to_script(v, script)
        if v not in out:
            out.append(v)
    return out


def _quotes(raw: Any, field: str, docs: dict[str, dict[str, Any]], doc_key: str | None, where: str) -> list[dict]:
    """Evidence entries (a quote string or {quote, doc?, occurrence?}) located in their documents."""
    out = []
    for j, ev in enumerate(_as_list(raw)):
        ev = ev if isinstance(ev, dict) else {"quote": ev}
        if not str(ev.get("quote") or "").strip():
            raise EvalsetSourceError(f"{where}: {field} {j} has an empty quote")
        ek = str(ev.get("doc", doc_key))
        if ek not in docs:
            raise EvalsetSourceError(f"{where}: {field} {j} has no known doc")
        quote = str(ev["quote"])
        start = locate(docs[ek]["text"], quote, ev.get("occurrence"), f"{where} {field} {j}")
        out.append({"doc_id": docs[ek]["id"], "quote": quote, "start": start, "end": start + len(quote)})
    return out


def build(source: dict[str, Any], root: str | Path = ROOT) -> EvalSet:
    """Validate the source and derive the EvalSet (corpus, queries, qrels, answers)."""
    root = Path(root)
    docs: dict[str, dict[str, Any]] = {}
    corpus: dict[str, dict[str, Any]] = {}
    for key, d in source["docs"].items():
        missing = [f for f in ("file", "title", "script") if not (isinstance(d, dict) and d.get(f))]
        if missing:
            raise EvalsetSourceError(f"docs.{key}: missing {', '.join(missing)}")
        if d["script"] not in LANG_SCRIPT:
            raise EvalsetSourceError(f"docs.{key}: script must be one of {tuple(LANG_SCRIPT)}, not {d['script']!r}")
        path = root / d["file"]
        if not path.exists():
            raise EvalsetSourceError(f"docs.{key}: {path} not found")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise EvalsetSourceError(f"docs.{key}: {path} is not UTF-8 ({e.reason} at byte {e.start})") from None
        doc_id = path.stem
        # sections: name -> verbatim text where the section starts; a question's section is the
        # one holding its first evidence quote (a per-section breakdown and a coverage check)
        sections = sorted(
            (locate(text, str(anchor), None, f"docs.{key}.sections.{name}"), str(name))
            for name, anchor in (d.get("sections") or {}).items()
        )
        docs[str(key)] = {
            "id": doc_id,
            "text": text,
            "script": d["script"],
            "norm": normalize_answer(text),
            "sections": sections,
        }
        corpus[doc_id] = {
            "_id": doc_id,
            "title": d["title"],
            "text": text,
            "metadata": {"source": d["file"], "script": d["script"], "sections": [n for _, n in sections]},
        }

    queries: dict[str, dict[str, Any]] = {}
    qrels: dict[str, dict[str, int]] = {}
    answers: dict[str, dict[str, Any]] = {}
    for n, q in enumerate(source["questions"], 1):
        if not isinstance(q, dict):
            raise EvalsetSourceError(f"question #{n}: expected a mapping, got {q!r}")
        qid = q.get("id")
        where = f"question #{n} ({qid})"
        if not qid or qid in queries:
            raise EvalsetSourceError(f"{where}: missing or duplicate id")
        text = str(q.get("q") or "").strip()
        if not text:
            raise EvalsetSourceError(f"{where}: empty question text")
        qtype = q.get("type")
        if qtype not in TYPES:
            raise EvalsetSourceError(f"{where}: type {qtype!r} is not one of {TYPES}")
        lang = question_language(text)
        if q.get("lang") and q["lang"] != lang:
            raise EvalsetSourceError(f"{where}: lang says {q['lang']} but the text reads as {lang}")
        answerable = qtype != "unanswerable"
        kind = q.get("kind") or (qtype if qtype in KINDS else None)
        if answerable and kind not in KINDS:
            raise EvalsetSourceError(f"{where}: type {qtype} needs `kind` (one of {KINDS})")
        follow = q.get("follow_up_of")
        if follow is not None and follow not in queries:
            raise EvalsetSourceError(f"{where}: follow_up_of {follow!r} is not an earlier question")
        if (qtype == "follow-up" or follow) and not (follow and q.get("standalone")):
            raise EvalsetSourceError(f"{where}: a follow-up needs follow_up_of and a standalone rewrite")

        doc_key = str(q["doc"]) if q.get("doc") is not None else None
        if doc_key is not None and doc_key not in docs:
            raise EvalsetSourceError(f"{where}: unknown doc {doc_key!r}")
        evidence = _quotes(q.get("evidence"), "evidence", docs, doc_key, where)
        # alt_evidence: other passages saying the same thing (alternatives, not extra things to
        # find; `evidence` quotes are all needed, as the harness scores them)
        alt_evidence = _quotes(q.get("alt_evidence"), "alt_evidence", docs, doc_key, where)
        refs = _in_script(_as_list(q.get("answers")), lang)
        items = _in_script(_as_list(q.get("list_items")), lang)
        if answerable:
            if not refs or not evidence or doc_key is None:
                raise EvalsetSourceError(f"{where}: an answerable question needs answers, evidence and doc")
            if kind == "list" and len(items) < 2:
                raise EvalsetSourceError(f"{where}: a list question needs list_items (two or more)")
        elif refs or evidence or alt_evidence:
            raise EvalsetSourceError(f"{where}: an unanswerable question has no answers or evidence")
        absent = [str(t) for t in _as_list(q.get("absent_terms"))]
        if not answerable and not absent:
            raise EvalsetSourceError(f"{where}: an unanswerable question needs absent_terms (what an answer would need)")
        for t in absent:
            # the annotator's grep, made permanent: the term must not occur in any seed, in either script
            hits = [k for k, d in docs.items() if normalize_answer(t) in d["norm"]]
            if hits:
                raise EvalsetSourceError(f"{where}: absent term {t!r} does occur in doc(s) {hits}")

        doc_id = docs[doc_key]["id"] if (answerable and doc_key) else None
        section = None
        if evidence and docs[doc_key]["sections"]:
            first = evidence[0]["start"]
            section = next((n for s, n in reversed(docs[doc_key]["sections"]) if s <= first), None)
        near = docs[doc_key]["id"] if (not answerable and doc_key) else None
        cross = bool(answerable and lang in LANG_SCRIPT and docs[doc_key]["script"] != lang)
        meta = {
            "type": qtype,
            "kind": kind,
            "lang": lang,
            "answerable": answerable,
            "doc_id": doc_id,
            "follow_up_of": follow,
            "standalone": q.get("standalone"),
            "cross_script": cross,
            "section": section,
        }
        if near:
            meta["near_doc"] = near  # the document the unanswerable question imitates
        queries[qid] = {"_id": qid, "text": text, "metadata": meta}
        if answerable:
            for ev in evidence + alt_evidence:
                qrels.setdefault(qid, {})[ev["doc_id"]] = 1
        row = {
            "query_id": qid,
            "question": text,
            "answers": refs,
            "evidence": evidence,
            "answerable": answerable,
            "type": qtype,
            "kind": kind,
            "list_items": items,
            "lang": lang,
            "follow_up_of": follow,
            "standalone": q.get("standalone"),
        }
        if q.get("answer_in_quote") is False:
            row["answer_in_quote"] = False  # paraphrased/English/derived answer: not a substring
        if alt_evidence:
            row["alt_evidence"] = alt_evidence
        if absent:
            row["absent_terms"] = absent
        if q.get("note"):
            row["note"] = q["note"]
        answers[qid] = row
    return EvalSet(str(source.get("name") or "seeds"), corpus, queries, qrels, answers)


def stats_markdown(es: EvalSet) -> str:
    """Counts per type, answer kind, language and document, as Markdown tables (for the README)."""
    from collections import Counter

    rows = list(es.answers.values())
    metas = {q: es.queries[q]["metadata"] for q in es.queries}
    ans = [r for r in rows if r["answerable"]]
    out = [
        f"{len(rows)} questions: {len(ans)} answerable, {len(rows) - len(ans)} unanswerable; "
        f"{sum(len(r['evidence']) for r in rows)} evidence quotes "
        f"({sum(len(r['evidence']) > 1 for r in rows)} questions cite more than one); "
        f"{sum(1 for r in rows if r.get('follow_up_of'))} follow-up turns; "
        f"{sum(1 for r in rows if r.get('answer_in_quote') is False)} paraphrased references "
        "(`answer_in_quote: false`).",
        "",
    ]

    def table(title: str, counter: Counter, order: list[str] | None = None) -> None:
        out.extend([f"| {title} | questions |", "|---|---:|"])
        for k in order or sorted(counter):
            out.append(f"| {k} | {counter[k]} |")
        out.append("")

    table("type", Counter(r["type"] for r in rows), list(TYPES))
    table("answer kind (answerable)", Counter(r["kind"] for r in ans), list(KINDS))
    table("language", Counter(r["lang"] for r in rows), ["zh-Hans", "zh-Hant", "en"])
    cross = Counter(
        f"{m['lang']} question → {es.corpus[m['doc_id']]['metadata']['script']} document"
        for m in metas.values()
        if m["cross_script"]
    )
    table("cross-script", cross)
    out.extend(["| document | script | answerable | unanswerable (imitating it) |", "|---|---|---:|---:|"])
    for d, doc in es.corpus.items():
        a = sum(1 for m in metas.values() if m["doc_id"] == d)
        u = sum(1 for m in metas.values() if m.get("near_doc") == d)
        out.append(f"| {d} | {doc['metadata']['script']} | {a} | {u} |")
    out.extend(["", "| document · section | answerable |", "|---|---:|"])
    for d, doc in es.corpus.items():
        for name in doc["metadata"].get("sections", []):
            n = sum(1 for m in metas.values() if m["doc_id"] == d and m.get("section") == name)
            out.append(f"| {d[:3]} · {name} | {n} |")
    return "\n".join(out) + "\n"


STATS_BEGIN = "<!-- stats:begin (generated by scripts/build_seed_evalset.py) -->"
STATS_END = "<!-- stats:end -->"


def with_stats(readme: str, stats: str) -> str:
    """The README text with the block between the stats markers replaced (unchanged without markers)."""
    i, j = readme.find(STATS_BEGIN), readme.find(STATS_END)
    if i < 0 or j < i:
        return readme
    return readme[: i + len(STATS_BEGIN)] + "\n" + stats + readme[j:]


def write_all(es: EvalSet, out: Path, readme: Path | None) -> None:
    write_beir(es, out)
    if readme is not None and readme.exists():
        text = readme.read_text(encoding="utf-8")
        readme.write_text(with_stats(text, stats_markdown(es)), encoding="utf-8")


def _snapshot(out: Path, readme: Path | None) -> dict[str, bytes]:
    names = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "answers.jsonl")
    snap = {n: (out / n).read_bytes() if (out / n).exists() else b"" for n in names}
    if readme is not None and readme.exists():
        snap["README.md"] = readme.read_bytes()
    return snap


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default=str(ROOT / "evalsets/seeds/source.yaml"))
    ap.add_argument("--out", default=str(ROOT / "evalsets/seeds"))
    ap.add_argument("--check", action="store_true", help="fail if the files in --out are not up to date")
    ap.add_argument("--stats", action="store_true", help="print the counts as Markdown tables and exit")
    args = ap.parse_args(argv)
    try:
        es = build(load_source(args.source))
    except EvalsetSourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if args.stats:
        print(stats_markdown(es), end="")
        return 0
    readme = out / "README.md"
    if args.check:
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            tmp_readme = None
            if readme.exists():
                tmp_readme = Path(tmp) / "README.md"
                shutil.copyfile(readme, tmp_readme)
            write_all(es, Path(tmp), tmp_readme)
            fresh, current = _snapshot(Path(tmp), tmp_readme), _snapshot(out, readme)
        stale = [n for n in fresh if fresh[n] != current[n]]
        if stale:
            print(f"stale: {', '.join(stale)} (run scripts/build_seed_evalset.py)", file=sys.stderr)
            return 1
        print(f"up to date: {len(es.queries)} questions")
        return 0
    write_all(es, out, readme)
    n_ans = sum(1 for r in es.answers.values() if r["answerable"])
    print(f"wrote {out}: {len(es.corpus)} documents, {len(es.queries)} questions ({n_ans} answerable)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
