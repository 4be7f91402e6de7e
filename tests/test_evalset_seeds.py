"""The seed evaluation set (evalsets/seeds) is internally consistent and faithful to the seeds.

Every change to the pipeline is steered by these questions, so the data itself is tested:
quotes are verbatim at their offsets, references are backed by their quotes, unanswerable
questions really are unanswerable (their key terms occur in no seed, in either script), the
counts the issue asks for hold, and the built files match the hand-written source.
Also unit tests for the builder (scripts/build_seed_evalset.py) on tiny fixtures.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from rag.evaluate.evalsets import load_beir
from rag.text.norm import cjk_count, normalize_answer, question_language

ROOT = Path(__file__).resolve().parents[1]
SET = ROOT / "evalsets" / "seeds"
SEEDS = ROOT / "seeds"
CHINESE = ("zh-Hans", "zh-Hant")  # question languages that have a script


def _builder():
    spec = importlib.util.spec_from_file_location("build_seed_evalset", ROOT / "scripts" / "build_seed_evalset.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def es():
    return load_beir(SET)


@pytest.fixture(scope="module")
def seed_text():
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))}


def _answerable(es):
    return [q for q, r in es.answers.items() if r["answerable"]]


# ------------------------------------------------------------------ files and format


def test_loads_as_beir_and_every_query_has_an_answers_row(es, seed_text):
    assert set(es.corpus) == set(seed_text)
    assert set(es.queries) == set(es.answers)
    for doc_id, doc in es.corpus.items():
        # the corpus carries the full original text, so offsets refer to the same string
        assert doc["text"] == seed_text[doc_id]
        assert doc["title"].strip()
        assert doc["metadata"]["source"] == f"seeds/{doc_id}.txt"


def test_ids_are_unique_in_the_files():
    ids = [json.loads(line)["_id"] for line in (SET / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(ids) == len(set(ids))
    rows = [json.loads(line)["query_id"] for line in (SET / "answers.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(set(rows)) == len(ids)


def test_built_files_match_the_source():
    """answers.jsonl etc. are generated: a hand edit of them (instead of source.yaml) is caught."""
    assert _builder().main(["--check"]) == 0


def test_source_flow_lists_quote_every_item():
    """YAML splits an unquoted flow-list item at an ASCII comma ("[152戶,430口人]" is two items),
    and the seeds use ASCII commas inside Chinese text; so every item in [..] is quoted."""
    import re

    for n, line in enumerate((SET / "source.yaml").read_text(encoding="utf-8").splitlines(), 1):
        m = re.match(r"^\s+(?:answers|list_items|absent_terms): \[(.*)\]\s*$", line)
        if m:
            assert re.fullmatch(r"('([^']|'')*'|\"[^\"]*\")(, ('([^']|'')*'|\"[^\"]*\"))*", m.group(1)), (n, line)


# ------------------------------------------------------------------ evidence


def test_every_quote_is_verbatim_at_its_offset(es, seed_text):
    n = 0
    for qid, row in es.answers.items():
        for ev in row["evidence"] + row.get("alt_evidence", []):
            text = seed_text[ev["doc_id"]]
            start = ev["start"]
            assert text[start : start + len(ev["quote"])] == ev["quote"], (qid, ev["quote"])
            assert ev["end"] == start + len(ev["quote"])
            n += 1
    assert n >= 120


def test_quotes_are_short(es):
    lengths = [len(ev["quote"]) for r in es.answers.values() for ev in r["evidence"] + r.get("alt_evidence", [])]
    assert max(lengths) <= 100, max(lengths)
    assert sorted(lengths)[len(lengths) // 2] <= 40  # median: a clause, not a paragraph


def test_answerable_questions_have_answers_quotes_and_qrels(es):
    for qid in _answerable(es):
        row, meta = es.answers[qid], es.queries[qid]["metadata"]
        assert row["answers"] and all(a.strip() for a in row["answers"]), qid
        assert row["evidence"], qid
        # document-level qrels are exactly the documents the quotes come from
        assert es.qrels[qid] == {ev["doc_id"]: 1 for ev in row["evidence"] + row.get("alt_evidence", [])}, qid
        assert meta["doc_id"] in es.qrels[qid], qid


def test_unanswerable_questions_have_no_qrels_answers_or_evidence(es):
    for qid, row in es.answers.items():
        if row["answerable"]:
            continue
        assert qid not in es.qrels
        assert not row["answers"] and not row["evidence"] and not row["list_items"] and not row.get("alt_evidence")
        assert es.queries[qid]["metadata"]["answerable"] is False


def test_unanswerable_key_terms_occur_in_no_seed_in_either_script(es, seed_text):
    """The annotator's grep, kept: what an answer would need is absent from all five seeds.

    normalize_answer folds traditional to simplified, so one check covers both scripts."""
    corpus = [normalize_answer(t) for t in seed_text.values()]
    for qid, row in es.answers.items():
        if row["answerable"]:
            continue
        assert row.get("absent_terms"), qid
        for term in row["absent_terms"]:
            assert not any(normalize_answer(term) in c for c in corpus), (qid, term)


def test_reference_answers_are_backed_by_their_quotes(es):
    """A fact/how/why reference occurs (normalised: one script, half-width, no punctuation) in
    its quotes, and every list item does, unless the row says `answer_in_quote: false`
    (a translation or paraphrase). Keeps references honest when someone edits a quote."""
    paraphrased = 0
    for qid, row in es.answers.items():
        if not row["answerable"]:
            continue
        quotes = normalize_answer("".join(ev["quote"] for ev in row["evidence"]))
        if row.get("answer_in_quote") is False:
            paraphrased += 1
            continue
        if row["kind"] == "list":
            missing = [it for it in row["list_items"] if normalize_answer(it) not in quotes]
            assert not missing, (qid, missing)
        else:
            assert any(normalize_answer(a) in quotes for a in row["answers"]), (qid, row["answers"])
    # most references are extractive; paraphrases are the exception, flagged one by one
    assert paraphrased <= len(_answerable(es)) // 4


def test_list_questions_list_their_items(es):
    lists = [r for r in es.answers.values() if r["answerable"] and r["kind"] == "list"]
    assert len(lists) >= 20
    for r in lists:
        assert len(r["list_items"]) >= 2, r["query_id"]
        assert len(set(r["list_items"])) == len(r["list_items"]), r["query_id"]


# ------------------------------------------------------------------ languages and coverage


def test_language_labels_match_the_text(es):
    for qid, q in es.queries.items():
        assert q["metadata"]["lang"] == question_language(q["text"]) == es.answers[qid]["lang"], qid


def test_counts_required_by_the_issue(es):
    answers = es.answers.values()
    assert len(es.queries) >= 130
    assert sum(not r["answerable"] for r in answers) >= 30
    assert sum(r["lang"] == "en" for r in answers) >= 12
    types = Counter(r["type"] for r in answers)
    for t in ("fact", "list", "how", "why", "cross-script", "english", "follow-up", "unanswerable"):
        assert types[t] >= 3, (t, types)


def test_english_questions_have_an_english_or_numeric_reference(es):
    """An English question is answered in English: one reference must not need Chinese."""
    for qid, row in es.answers.items():
        if row["lang"] == "en" and row["answerable"]:
            assert any(not cjk_count(a) for a in row["answers"]), qid


def test_folder_readme_counts_are_current(es):
    n_ans = len(_answerable(es))
    assert f"{len(es.queries)} ({n_ans} answerable)" in (SET.parent / "README.md").read_text(encoding="utf-8")


def test_every_seed_document_is_covered(es, seed_text):
    per_doc = Counter(es.queries[q]["metadata"]["doc_id"] for q in _answerable(es))
    for doc_id in seed_text:
        assert per_doc[doc_id] >= 10, (doc_id, per_doc)


def test_every_section_of_every_document_is_covered(es):
    """Sections (articles, speeches, report parts) are declared in source.yaml by the verbatim text
    where each starts; every one has at least one answerable question."""
    per_section = Counter()
    for qid in _answerable(es):
        meta = es.queries[qid]["metadata"]
        assert meta["section"], qid
        per_section[(meta["doc_id"], meta["section"])] += 1
    declared = [(d, s) for d, doc in es.corpus.items() for s in doc["metadata"]["sections"]]
    assert len(declared) >= 30
    assert [k for k in declared if per_section[k] == 0] == []


def test_cross_script_questions_both_ways(es):
    """At least 15 simplified questions about traditional documents and 15 the other way."""
    ways = Counter()
    for qid in _answerable(es):
        meta = es.queries[qid]["metadata"]
        doc_script = es.corpus[meta["doc_id"]]["metadata"]["script"]
        if meta["lang"] in CHINESE and meta["lang"] != doc_script:
            ways[(meta["lang"], doc_script)] += 1
            assert meta["cross_script"] is True, qid
        else:
            assert meta["cross_script"] is False, qid
    for qid, q in es.queries.items():
        if q["metadata"]["type"] == "cross-script":
            assert q["metadata"]["cross_script"], qid
    assert ways[("zh-Hans", "zh-Hant")] >= 15, ways
    assert ways[("zh-Hant", "zh-Hans")] >= 15, ways


def test_follow_ups_reference_earlier_questions_and_have_standalone_rewrites(es):
    order = list(es.queries)
    follow = [q for q in order if es.queries[q]["metadata"]["follow_up_of"]]
    assert len(follow) >= 8
    # some second turns are unanswerable: refusing in context, not only on a fresh question
    assert sum(not es.queries[q]["metadata"]["answerable"] for q in follow) >= 2
    for qid in follow:
        meta = es.queries[qid]["metadata"]
        parent = meta["follow_up_of"]
        assert parent in es.queries and order.index(parent) < order.index(qid), qid
        assert meta["standalone"] and meta["standalone"] != es.queries[qid]["text"], qid
        # the rewrite carries what the pronoun/ellipsis left out: it is longer than the turn
        assert len(meta["standalone"]) > len(es.queries[qid]["text"]), qid
        assert question_language(meta["standalone"]) == meta["lang"], qid
        if meta["answerable"] and es.queries[parent]["metadata"]["answerable"]:
            assert meta["doc_id"] == es.queries[parent]["metadata"]["doc_id"], qid


# ------------------------------------------------------------------ the builder


def _tiny_source(tmp_path: Path, questions: list[dict]) -> tuple[dict, Path]:
    (tmp_path / "d.txt").write_text("按:6月25日,省委召開座談會。會議很好。會議很好。", encoding="utf-8")
    src = {"docs": {"d": {"file": "d.txt", "title": "t", "script": "zh-Hant"}}, "questions": questions}
    return src, tmp_path


def test_builder_computes_offsets_and_converts_answers_to_the_question_script(tmp_path):
    b = _builder()
    src, root = _tiny_source(
        tmp_path, [{"id": "a", "q": "省委哪天召开座谈会?", "type": "fact", "doc": "d", "answers": ["6月25日"],
                    "evidence": ["6月25日,省委召開座談會"]}]
    )
    es = b.build(src, root)
    ev = es.answers["a"]["evidence"][0]
    assert (ev["start"], ev["end"]) == (2, 2 + len("6月25日,省委召開座談會"))
    assert es.queries["a"]["metadata"]["lang"] == "zh-Hans" and es.queries["a"]["metadata"]["cross_script"]
    assert es.qrels == {"a": {"d": 1}}


def test_builder_rejects_a_quote_that_is_not_verbatim_and_shows_the_real_passage(tmp_path):
    b = _builder()
    # full-width comma and simplified script: normalises to the same text, but is not verbatim
    src, root = _tiny_source(tmp_path, [{"id": "a", "q": "哪天?", "type": "fact", "doc": "d", "answers": ["x"],
                                          "evidence": ["6月25日，省委召开座谈会"]}])
    with pytest.raises(b.EvalsetSourceError) as e:
        b.build(src, root)
    assert "6月25日,省委召開座談會" in str(e.value)


def test_builder_needs_occurrence_for_a_repeated_quote(tmp_path):
    b = _builder()
    q = {"id": "a", "q": "会议怎样?", "type": "fact", "doc": "d", "answers": ["很好"], "evidence": ["會議很好"]}
    src, root = _tiny_source(tmp_path, [q])
    with pytest.raises(b.EvalsetSourceError, match="occurs 2 times"):
        b.build(src, root)
    q["evidence"] = [{"quote": "會議很好", "occurrence": 2}]
    assert b.build(src, root).answers["a"]["evidence"][0]["start"] == len("按:6月25日,省委召開座談會。會議很好。")


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"type": "unanswerable", "answers": ["x"]}, "no answers or evidence"),
        ({"type": "unanswerable"}, "absent_terms"),
        ({"type": "unanswerable", "absent_terms": ["座談會"]}, "does occur"),
        ({"type": "fact"}, "needs answers, evidence and doc"),
        ({"type": "follow-up", "kind": "fact", "follow_up_of": "zz", "standalone": "x"}, "not an earlier"),
        ({"type": "list", "answers": ["x"], "evidence": ["省委召開座談會"]}, "needs list_items"),
        ({"type": "trivia"}, "not one of"),
    ],
)
def test_builder_rejects_inconsistent_rows(tmp_path, bad, message):
    b = _builder()
    src, root = _tiny_source(tmp_path, [{"id": "a", "q": "省委哪天召开座谈会?", "doc": "d", **bad}])
    with pytest.raises(b.EvalsetSourceError, match=message):
        b.build(src, root)


def test_nearest_passage_maps_back_to_original_characters():
    b = _builder()
    assert b.nearest_passage("甲。他說:『五個好』即可。", "他说：“五个好”") == "他說:『五個好"
    assert b.nearest_passage("甲乙丙", "丁") is None


def test_check_reports_stale_files_and_main_reports_bad_sources(tmp_path, capsys):
    b = _builder()
    # an empty output folder is not up to date with the source
    assert b.main(["--check", "--out", str(tmp_path)]) == 1
    assert "stale" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("docs: {}\nquestions: [\n", encoding="utf-8")
    assert b.main(["--source", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written on error


def test_builder_rejects_an_unknown_script(tmp_path):
    b = _builder()
    src, root = _tiny_source(tmp_path, [])
    src["docs"]["d"]["script"] = "traditional"
    with pytest.raises(b.EvalsetSourceError, match="script must be one of"):
        b.build(src, root)
