"""The eval harness end to end on a tiny fixed Chinese set: FakeEncoder, the extractive backend
(and the fake chat model), resume after an interruption, baselines and --check, SQuAD import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.config import load_config
from rag.evaluate.evalsets import EvalSet, load_beir, write_beir
from rag.evaluate import harness as H

DOCS = {
    "d_city": ("哈尔滨冰雪节", "哈尔滨国际冰雪节创办于1985年，每年一月五日开幕。\n\n冰雪节期间举办冰灯游园会、雪雕比赛和冬泳表演。主办方表示，冰雪节已经成为世界四大冰雪节之一。\n\n2010年的冰雪节吸引游客超过八百万人次，旅游收入达到一百亿元。"),
    "d_party": ("創先爭優活動", "市委要求各級黨組織做到「五個好」：領導班子好、黨員隊伍好、工作機制好、工作業績好、群眾反映好。\n\n活動自2010年4月開始，分三個階段進行。第一階段為動員部署，第二階段為組織實施，第三階段為總結表彰。"),
    "d_farm": ("农业合作社", "红星农业合作社成立于2008年，现有社员三百二十户。\n\n合作社主要种植水稻和大豆，2010年粮食总产量达到一万五千吨。社长王建国说，合作社将继续扩大规模。"),
}


def _ev(doc: str, quote: str) -> dict:
    return {"doc_id": doc, "quote": quote, "start": DOCS[doc][1].index(quote)}


# qid, question, references, evidence, answerable, type, list items, follows
QUESTIONS = [
    ("q1", "哈尔滨国际冰雪节创办于哪一年？", ["1985年"], [_ev("d_city", "哈尔滨国际冰雪节创办于1985年")], True, "fact", [], None),
    ("q2", "市委要求的五个好是什么？", ["领导班子好、党员队伍好、工作机制好、工作业绩好、群众反映好"],
     [_ev("d_party", "領導班子好、黨員隊伍好、工作機制好、工作業績好、群眾反映好")], True, "list",
     ["领导班子好", "党员队伍好", "工作机制好", "工作业绩好", "群众反映好"], None),
    ("q3", "紅星農業合作社有多少戶社員？", ["三百二十户"], [_ev("d_farm", "现有社员三百二十户")], True, "cross-script", [], None),
    ("q4", "它的社长是谁？", ["王建国"], [_ev("d_farm", "社长王建国说")], True, "follow-up", [], "q3"),
    ("q5", "哈尔滨冰雪节的门票价格是多少？", [], [], False, "unanswerable", [], None),
    ("q6", "创先争优活动的预算是多少钱？", [], [], False, "unanswerable", [], None),
]


def make_set(path: Path) -> Path:
    corpus = {d: {"_id": d, "title": t, "text": x, "metadata": {}} for d, (t, x) in DOCS.items()}
    queries = {q[0]: {"_id": q[0], "text": q[1], "metadata": {"answerable": q[4]}} for q in QUESTIONS}
    qrels = {q[0]: {q[3][0]["doc_id"]: 1} for q in QUESTIONS if q[4]}
    answers = {
        q: {"query_id": q, "question": t, "answers": r, "evidence": e, "answerable": a, "type": ty,
            "list_items": li, "lang": "zh-Hans", "follow_up_of": fu}
        for q, t, r, e, a, ty, li, fu in QUESTIONS
    }
    write_beir(EvalSet("mini", corpus, queries, qrels, answers), path)
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAG_EMBED_MODEL", "fake")
    monkeypatch.setenv("RAG_CHUNK_MAX_TOKENS", "40")  # small chunks: the quotes must be placed among several
    monkeypatch.setenv("RAG_CHUNK_MIN_TOKENS", "5")
    monkeypatch.setenv("RAG_LLM_BACKEND", "extractive")
    cfg = load_config()
    assert cfg.embed.model == "fake" and cfg.paths.home == str(tmp_path / "home")
    return tmp_path, cfg, make_set(tmp_path / "mini")


def test_end_to_end_extractive(env, monkeypatch):
    tmp, cfg, es_path = env
    # the index cache key hashes the ingest/chunking code; pin it so edits elsewhere in a shared
    # working tree during the test cannot change it between the two runs below
    from rag.evaluate import cache

    monkeypatch.setattr(cache, "_code_hash", lambda: "pinned")
    run = H.run_eval(es_path, cfg, llm="extractive", out_dir=tmp / "out", progress=False)
    out = run.out_dir
    for f in ("metrics.json", "results.jsonl", "report.md", "run.json", "recall_at_k.png", "latency.png"):
        assert (out / f).exists(), f
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["qid"] for r in rows] == ["q1", "q2", "q3", "q4", "q5", "q6"]
    by = {r["qid"]: r for r in rows}
    # every evidence quote was placed on some chunk of its document (several chunks per document)
    assert run.info["evidence_problems"] == []
    assert run.info["index"]["n_chunks"] > len(DOCS)
    for q in ("q1", "q2", "q3", "q4"):
        assert by[q]["relevant_chunks"] and all(c.startswith(by[q]["evidence"][0]["doc_id"] + "#") for c in by[q]["relevant_chunks"][0])
    # the follow-up was asked with the conversation the system produced for its parent
    assert by["q4"]["history"] == [[by["q3"]["question"], by["q3"]["answer"]]]
    # per-question results carry the answer, citations, scores and the retrieved chunks with text
    r1 = by["q1"]
    assert r1["answer"] and r1["hits"] and r1["hits"][0]["text"]
    assert set(r1["retrieved"]) == {"bm25", "dense", "hybrid"} and len(r1["retrieved"]["hybrid"]) <= H.DEPTH
    assert {"em", "f1", "contains", "refused"} <= set(r1["scores"])
    assert "f1" not in by["q5"]["scores"]  # unanswerable: only refusal is scored
    assert "list_coverage" in by["q2"]["scores"]
    # scores are reproducible from the stored row alone
    for r in rows:
        assert H.score_row(r) == r["scores"]
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["configs"]["extractive/hybrid/k5"]
    assert m["n"] == 6 and m["n_answerable"] == 4 and m["n_errors"] == 0
    assert m["refusal"]["n_unanswerable"] == 2 and m["refusal"]["n_answerable"] == 4
    assert m["retrieval"]["chunk"]["n"] == 4 and m["retrieval"]["doc"]["n"] == 4
    for level in ("chunk", "doc"):
        rec = [m["retrieval"][level][f"recall@{k}"] for k in H.KS]
        assert rec == sorted(rec) and 0 <= rec[0] <= rec[-1] <= 1  # recall@k never falls as k grows
    # q1 shares most words with its one relevant document: found at document rank 1 by BM25
    assert m["retrieval_sweep"]["bm25"]["doc"]["recall@1"] > 0
    assert set(m["latency"]) == {"retrieve", "first_token", "total"} and m["latency"]["total"]["n"] == 6
    assert {"d_city", "d_party", "d_farm", "(unanswerable)"} == set(m["per_document"])
    report = (out / "report.md").read_text(encoding="utf-8")
    for heading in ("## Summary", "## Retrieval by mode", "## Per document", "## Answers side by side", "recall_at_k.png"):
        assert heading in report
    assert run.info["git"]["commit"] is None or len(run.info["git"]["commit"]) == 40
    from rag.evaluate.report import export_report

    dest = export_report(out, tmp / "bench" / "eval_mini.md")
    assert "](eval_mini_files/recall_at_k.png)" in dest.read_text(encoding="utf-8")
    assert (tmp / "bench" / "eval_mini_files" / "recall_at_k.png").exists()

    # a second run reuses the cached index (same corpus, same settings)
    done = next((tmp / "home" / "eval-cache").glob("mini-*/done.json"))
    stamp = done.stat().st_mtime_ns
    run2 = H.run_eval(es_path, cfg, llm="extractive", out_dir=tmp / "out2", progress=False, sweep_modes=("bm25",))
    assert done.stat().st_mtime_ns == stamp and run2.info["index"]["key"] == run.info["index"]["key"]
    assert run2.metrics["configs"]["extractive/hybrid/k5"]["answer"] == m["answer"]  # deterministic backend


def test_retrieval_only_and_compare(env):
    tmp, cfg, es_path = env
    run = H.run_eval(es_path, cfg, retrieval_only=True, compare=["mode=bm25,dense"], out_dir=tmp / "ro", progress=False)
    assert [c.name for c in run.configs] == ["bm25/retrieval", "dense/retrieval"]
    rows = run.rows
    assert len(rows) == 12 and all(r["answer"] is None and "scores" not in r for r in rows)
    m = run.metrics["configs"]["bm25/retrieval"]
    assert "answer" not in m and set(m["latency"]) == {"retrieve"}
    # a configuration's own retrieval equals the sweep entry for its mode
    assert m["retrieval"] == m["retrieval_sweep"]["bm25"]
    from rag.evaluate.report import summary_rows

    names, srows = summary_rows(run.metrics)
    assert names == ["bm25/retrieval", "dense/retrieval"] and any(r and r[0] == "chunk Recall@5" for r in srows)
    # the run files (TREC format) beside the report score the same with ranx on the set's qrels
    from ranx import Qrels, Run, evaluate

    trec = tmp / "ro" / "runs" / "bm25_retrieval.bm25.trec"
    assert trec.is_file() and (tmp / "ro" / "runs" / "dense_retrieval.dense.trec").is_file()
    first = trec.read_text(encoding="utf-8").splitlines()[0].split()
    assert first[1] == "Q0" and first[3] == "1" and first[5] == "bm25/retrieval/bm25"  # tag: configuration/mode
    by_q = {r["qid"]: r for r in rows if r["config"] == "bm25/retrieval"}
    qrels = Qrels({q: {c: 1 for c in r["relevant_chunks"][0]} for q, r in by_q.items() if r["relevant_chunks"]})
    run_f = Run.from_file(str(trec), kind="trec")
    run_r = Run({q: {c: float(len(r["retrieved"]["bm25"]) - i) for i, c in enumerate(r["retrieved"]["bm25"])}
                 for q, r in by_q.items() if q in qrels.qrels})
    assert abs(evaluate(qrels, run_f, "mrr@10", make_comparable=True) - evaluate(qrels, run_r, "mrr@10", make_comparable=True)) < 1e-9


def test_fake_llm_answers_and_errors_are_recorded(env):
    """The LLM path (Token stream, 【n】 citations) through the fake chat model; a question that
    makes the model fail is recorded as an error and the run goes on."""
    from rag.llm.backends import FakeChatModel

    tmp, cfg, es_path = env
    # the model must be asked every question (q6 crashes it), so no refusal before the model
    cfg = cfg.replace(answer={"refuse_threshold": 0.0})

    def respond(messages):
        text = "\n".join(str(m.content) for m in messages)
        if "预算" in text:
            raise RuntimeError("model crashed")
        if "冰雪节创办" in text:
            return "哈尔滨国际冰雪节创办于1985年【1】。"
        return "资料中没有相关信息。"

    def judge(messages):  # LLM-as-judge: agrees only when the candidate names the reference year
        text = str(messages[-1].content)
        return "是" if "待评答案：哈尔滨国际冰雪节创办于1985年" in text else "否"

    run = H.run_eval(es_path, cfg, llm="fake", chat_model=FakeChatModel(responses=respond), out_dir=tmp / "fake",
                     progress=False, sweep_modes=("bm25",), judge_model=FakeChatModel(responses=judge))
    by = {r["qid"]: r for r in run.rows}
    assert by["q6"].get("error") and "crashed" in by["q6"]["error"]
    assert by["q1"]["answer"].startswith("哈尔滨国际冰雪节创办于1985年")
    assert by["q1"]["scores"]["contains"] == 1.0
    m = run.metrics["configs"]["fake/hybrid/k5"]
    assert m["n_errors"] == 1 and m["n"] == 6
    # judged: the answerable, non-refused answers only; the judge's verdicts are labelled apart
    judged = {r["qid"]: r["judge"] for r in run.rows if "judge" in r}
    assert judged.get("q1") == 1 and all(not by[q].get("refused") for q in judged)
    assert m["judge"]["agreement"] == H.M.mean(judged.values()) and "LLM-as-judge" in m["judge"]["label"]
    assert not any(k.startswith("judge") for k in H.flat_metrics(m))  # never part of a baseline
    # errored questions are redone on resume
    calls = []
    H.run_eval(es_path, cfg, llm="fake", chat_model=FakeChatModel(responses=lambda m: "没有相关信息。"), out_dir=tmp / "fake",
               progress=False, sweep_modes=("bm25",), on_question=lambda rc, q, row: calls.append(q),
               judge_model=FakeChatModel(responses=["否"]))
    assert calls == ["q6"]


def test_resume_after_interruption(env):
    tmp, cfg, es_path = env
    out = tmp / "resume"
    seen: list[str] = []

    def stop_after_three(rc, qid, row):
        seen.append(qid)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        H.run_eval(es_path, cfg, llm="extractive", out_dir=out, progress=False, on_question=stop_after_three, sweep_modes=("bm25",))
    assert len((out / "results.jsonl").read_text(encoding="utf-8").splitlines()) == 3
    # the interruption left a partial report of the three questions done
    partial = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert partial["partial"] == {"questions_scored": 3, "questions_planned": 6}
    assert partial["configs"]["extractive/hybrid/k5"]["n"] == 3
    assert "**Partial run**: 3 of 6" in (out / "report.md").read_text(encoding="utf-8")
    again = H.report_only(out)  # scoring what is there asks nothing and agrees
    assert again.metrics["configs"] == partial["configs"]
    # --rescore recomputes the rows' scores from what they hold: with unchanged metrics, the same
    # numbers, and a row whose stored score was tampered with is put right
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    rows[0]["scores"]["contains"] = -1.0
    (out / "results.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    re_ = H.report_only(out, rescore=True)
    assert re_.metrics["configs"] == partial["configs"]
    assert json.loads((out / "results.jsonl").read_text(encoding="utf-8").splitlines()[0])["scores"]["contains"] != -1.0
    assert "recomputed from the stored answers" in (out / "report.md").read_text(encoding="utf-8")
    # a half-written last line (killed mid-write) is ignored and redone
    with open(out / "results.jsonl", "a", encoding="utf-8") as f:
        f.write('{"config": "extractive/hybrid/k5", "qid": "q4", "quest')
    seen.clear()
    run = H.run_eval(es_path, cfg, llm="extractive", out_dir=out, progress=False, on_question=lambda rc, q, r: seen.append(q), sweep_modes=("bm25",))
    assert seen == ["q4", "q5", "q6"]
    assert sorted(r["qid"] for r in run.rows) == ["q1", "q2", "q3", "q4", "q5", "q6"]
    assert run.metrics["configs"]["extractive/hybrid/k5"]["n"] == 6 and "partial" not in run.metrics
    # the same folder with other settings is refused rather than mixed
    with pytest.raises(H.EvalError, match="other settings"):
        H.run_eval(es_path, cfg, llm="extractive", mode="bm25", out_dir=out, progress=False)


def test_cli_baseline_check_fails_when_baseline_raised(env, capsys):
    from rag.apps.cli import main

    tmp, cfg, es_path = env
    base = tmp / "baseline.json"
    assert main(["eval", str(es_path), "--llm", "extractive", "--out", str(tmp / "b1"), "--update-baseline", "--baseline", str(base), "--no-progress"]) == 0
    b = json.loads(base.read_text(encoding="utf-8"))
    assert b["config"]["llm"] == "extractive" and b["command"].startswith("rag eval ") and "answer.f1" in b["metrics"]
    assert "latency" not in json.dumps(b["metrics"])  # machine-dependent numbers are never checked
    # tolerances follow the question counts: 4 answerable → one flip moves 0.25, tolerance 1.5/4
    assert b["tolerance"]["default"] == H.DEFAULT_TOLERANCE and b["tolerance"]["answer.contains"] == 0.375
    capsys.readouterr()
    # the same settings (taken from the baseline) pass
    assert main(["eval", str(es_path), "--out", str(tmp / "b2"), "--check", "--baseline", str(base), "--no-progress"]) == 0
    assert "baseline check passed" in capsys.readouterr().out
    # raise one score beyond its tolerance: the check fails and names the metric and the drop
    b["metrics"]["answer.contains"] = round(b["metrics"]["answer.contains"] + 0.5, 4)
    base.write_text(json.dumps(b), encoding="utf-8")
    assert main(["eval", str(es_path), "--out", str(tmp / "b3"), "--check", "--baseline", str(base), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "answer.contains" in err and "-0.5000" in err and "baseline check failed" in err
    # a per-metric tolerance wide enough lets it pass again
    b["tolerance"]["answer.contains"] = 0.55
    base.write_text(json.dumps(b), encoding="utf-8")
    assert main(["eval", str(es_path), "--out", str(tmp / "b4"), "--check", "--baseline", str(base), "--no-progress"]) == 0
    # checking a different configuration against this baseline is an error, not a pass
    assert main(["eval", str(es_path), "--mode", "bm25", "--out", str(tmp / "b5"), "--check", "--baseline", str(base), "--no-progress"]) == 2
    assert "not comparable" in capsys.readouterr().err


def test_check_baseline_directions_and_missing():
    base = {"metrics": {"a": 0.5, "refusal.false_refusal_rate": 0.2, "gone": 0.3}, "tolerance": {"default": 0.05, "a": 0.1}}
    ok, rows = H.check_baseline({"a": 0.41, "refusal.false_refusal_rate": 0.1}, base)
    by = {r.metric: r for r in rows}
    # a fell 0.09 ≤ its own tolerance 0.1; false refusals fell (better); "gone" is missing → fail
    assert by["a"].ok and by["refusal.false_refusal_rate"].ok and not by["gone"].ok and not ok
    ok, rows = H.check_baseline({"a": 0.5, "refusal.false_refusal_rate": 0.26, "gone": 0.3}, base)
    # false refusals rose 0.06 > 0.05 → fail
    assert not ok and [r.metric for r in rows if not r.ok] == ["refusal.false_refusal_rate"]


def test_parse_compare_and_configs():
    assert H.parse_compare(["llm=extractive,local", "k=3,5"]) == [
        {"llm": "extractive", "k": 3}, {"llm": "extractive", "k": 5}, {"llm": "local", "k": 3}, {"llm": "local", "k": 5}]
    for bad in (["mode"], ["mode=fast"], ["temperature=1"], ["k=a"]):
        with pytest.raises(H.EvalError):
            H.parse_compare(bad)
    cfg = load_config(env={})
    cs = H.make_configs(cfg, llm="extractive", mode=None, k=None, retrieval_only=False, compare=["mode=bm25,bm25,dense"])
    assert [c.name for c in cs] == ["extractive/bm25/k5", "extractive/dense/k5"]


def test_question_order_keeps_parents_first(tmp_path):
    es = load_beir(make_set(tmp_path / "s"))
    es.queries = {k: es.queries[k] for k in ["q4", "q1", "q3", "q2", "q5", "q6"]}
    assert H.question_order(es) == ["q3", "q4", "q1", "q2", "q5", "q6"]
    assert H.question_order(es, limit=1) == ["q3", "q4"]  # the follow-up needs its parent
    # sample 3 of 6: every 6/3 = 2nd question in file order → q4 (with its parent q3), q3, q5
    assert H.question_order(es, sample=3) == ["q3", "q4", "q5"]


def test_squad_import_and_on_the_fly_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    squad = {"version": "x", "data": [{"title": "梵文", "paragraphs": [
        {"id": "p1", "context": "在歐洲，梵語的學術研究由德國學者開創。", "qas": [
            {"id": "a1", "question": "誰開創了梵語研究？", "answers": [{"text": "德國學者", "answer_start": 12}]}]},
        {"id": "p2", "context": "梵文是印度的古典語言。", "qas": [
            {"id": "a2", "question": "梵文是哪裡的語言？", "answers": [{"text": "印度", "answer_start": 3}]},
            {"id": "a3", "question": "梵文有幾個字母？", "answers": [], "is_impossible": True}]}]}]}
    src = tmp_path / "data.json"
    src.write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    from rag.apps.cli import main

    assert main(["eval-import", "squad", str(src), "--out", str(tmp_path / "imp")]) == 0
    es = H.load_evalset(tmp_path / "imp")
    assert set(es.corpus) == {"p1", "p2"} and es.answers["a3"]["answerable"] is False
    assert es.answers["a1"]["evidence"] == [{"doc_id": "p1", "quote": "德國學者", "start": 12}]
    again = H.load_evalset(tmp_path / "imp")
    assert again.qrels == {"a1": {"p1": 1}, "a2": {"p2": 1}} and again.name == "imp"
    man = json.loads((tmp_path / "imp" / "evalset.json").read_text(encoding="utf-8"))
    assert man["source"]["format"] == "squad"
    # a folder holding only evalset.json imports its source into the cache on the fly
    lazy = tmp_path / "lazy"
    lazy.mkdir()
    (lazy / "evalset.json").write_text(json.dumps({"name": "lazy", "source": {"format": "squad", "path": "../data.json"},
                                                   "defaults": {"retrieval_only": True}}), encoding="utf-8")
    es2 = H.load_evalset(lazy)
    assert es2.name == "lazy" and set(es2.queries) == {"a1", "a2", "a3"}
    assert list((tmp_path / "home" / "eval-cache" / "sets").glob("lazy-*/corpus.jsonl"))
    with pytest.raises(H.EvalError, match="not found"):
        H.load_evalset(tmp_path / "nowhere")
    (lazy / "evalset.json").write_text(json.dumps({"source": {"format": "squad", "path": "../missing.json"}}), encoding="utf-8")
    with pytest.raises(H.EvalError, match="eval-import"):
        H.load_evalset(lazy)
    with pytest.raises(H.EvalError):
        H.import_set("squad", tmp_path / "nope.json", tmp_path / "x")


# ---------------------------------------------------------------- splits, refusal summary, naive baseline

LABELS = {"q1": True, "q2": True, "q3": True, "q4": True, "q5": False, "q6": False}


def test_dev_split_is_deterministic_and_keeps_conversations_whole():
    from rag.evaluate.evalsets import dev_split

    ids = list(LABELS)
    # answerable ids in sha1 order: q3 (7940…), q4 (9a76…), q1 (e041…), q2 (f237…) → dev q3, q1; held-out q4, q2
    # unanswerable: q6 (0545…), q5 (30b1…) → dev q6; held-out q5
    assert dev_split(ids, LABELS) == (["q3", "q1", "q6"], ["q4", "q2", "q5"])
    assert dev_split(list(reversed(ids)), LABELS) == dev_split(ids, LABELS)  # input order does not matter
    # q4 follows q3: it joins q3's half (dev) instead of the held-out half the alternation gave it;
    # the opening questions stay where they were
    assert dev_split(ids, LABELS, {"q4": "q3"}) == (["q3", "q4", "q1", "q6"], ["q2", "q5"])
    # a third turn (q2 → q4 → q3) follows the first question of the conversation
    assert dev_split(ids, LABELS, {"q4": "q3", "q2": "q4"}) == (["q3", "q4", "q1", "q2", "q6"], ["q5"])
    # a parent that is not among the ids leaves the alternation's half; a cycle (bad data) stays together
    assert dev_split(ids, LABELS, {"q4": "gone"}) == dev_split(ids, LABELS)
    assert dev_split(ids, LABELS, {"q1": "q2", "q2": "q1"}) == (["q3", "q1", "q2", "q6"], ["q4", "q5"])


def _row(qid: str, refused: bool) -> dict:
    return {"config": "extractive/hybrid/k5", "qid": qid, "question": qid, "answerable": LABELS[qid], "answer": "x",
            "refused": refused, "type": "fact" if LABELS[qid] else "unanswerable", "relevant_chunks": [], "relevant_docs": [],
            "retrieved": {}, "hits": [], "scores": {"refused": float(refused)}}


def test_summary_by_split_and_never_refuse_accuracy(tmp_path):
    from rag.evaluate import report as R
    from rag.evaluate import splits as S

    es = load_beir(make_set(tmp_path / "s"))
    # the set's halves: q4 follows q3 (see the test above)
    assert S.split_map(es) == {"q3": "dev", "q4": "dev", "q1": "dev", "q6": "dev", "q2": "heldout", "q5": "heldout"}
    rows = [_row(q, q in ("q2", "q5")) for q in LABELS]  # refuses q2 (answerable) and q5 (unanswerable)
    rc = H.RunConfig("extractive", "hybrid", 5)
    m = H.aggregate(rows, [rc], es, sweep_modes=())["configs"][rc.name]
    ref = m["refusal"]
    # all 6: unanswerable q5 refused, q6 not → 0.5; answerable q2 of 4 refused → 0.25; balanced (0.5 + 0.75) / 2;
    # right decisions: q1, q3, q4 answered + q5 refused = 4 of 6; never refusing: the 4 answerable of 6
    assert (ref["refusal_accuracy"], ref["false_refusal_rate"], ref["balanced_accuracy"]) == (0.5, 0.25, 0.625)
    assert ref["accuracy"] == pytest.approx(4 / 6) and ref["never_refuse_accuracy"] == pytest.approx(4 / 6)
    dev, held = m["by_split"]["dev"]["refusal"], m["by_split"]["heldout"]["refusal"]
    # dev (q1 q3 q4 q6): nothing refused → 0.0 / 0.0, balanced 0.5, 3 of 4 right = never refusing's 3 of 4
    assert (dev["refusal_accuracy"], dev["false_refusal_rate"], dev["balanced_accuracy"], dev["accuracy"], dev["never_refuse_accuracy"]) \
        == (0.0, 0.0, 0.5, 0.75, 0.75)
    # held-out (q2 q5): both refused → 1.0 / 1.0, balanced 0.5, 1 of 2 right; never refusing 1 of 2
    assert (held["refusal_accuracy"], held["false_refusal_rate"], held["balanced_accuracy"], held["accuracy"], held["never_refuse_accuracy"]) \
        == (1.0, 1.0, 0.5, 0.5, 0.5)
    assert m["by_split"]["dev"]["n"] == 4 and m["by_split"]["heldout"]["n"] == 2
    metrics = {"evalset": "s", "configs": {rc.name: m}}
    names, srows = R.summary_rows(metrics)
    by_label = {r[0]: r[1:] for r in srows if r}
    assert by_label["refusal balanced accuracy"] == ["0.625"] and by_label["… never refusing, same questions"] == ["0.667"]
    assert by_label["refusal decision accuracy (all questions)"] == ["0.667"]
    names, srows = R.summary_rows(R.split_metrics(metrics), R.SPLIT_ROWS)
    assert names == [f"{rc.name} · all", f"{rc.name} · dev", f"{rc.name} · held-out"]
    by_label = {r[0]: r[1:] for r in srows if r}
    assert by_label["questions"] == ["6", "4", "2"]
    assert by_label["… never refusing, same questions"] == ["0.667", "0.750", "0.500"]
    assert by_label["refusal balanced accuracy"] == ["0.625", "0.500", "0.500"]
    # never refusing is a property of the questions: shown, never checked; the halves are not baselined either
    flat = H.flat_metrics(m)
    assert "refusal.balanced_accuracy" in flat and "refusal.never_refuse_accuracy" not in flat
    assert not any("by_split" in k or "dev" in k for k in flat)


def test_split_option_runs_one_half(env):
    from rag.apps.cli import main

    tmp, cfg, es_path = env
    run = H.run_eval(es_path, cfg, llm="extractive", split="heldout", out_dir=tmp / "held", progress=False, sweep_modes=("bm25",))
    assert [r["qid"] for r in run.rows] == ["q2", "q5"] and {r["split"] for r in run.rows} == {"heldout"}
    assert run.info["settings"]["split"] == "heldout" and run.info["settings"]["split_counts"] == {"dev": 0, "heldout": 2}
    assert list(run.metrics["configs"]["extractive/hybrid/k5"]["by_split"]) == ["heldout"]
    report = (run.out_dir / "report.md").read_text(encoding="utf-8")
    assert "Only the held-out half" in report and "## Summary by split" not in report
    with pytest.raises(H.EvalError, match="other settings"):
        H.run_eval(es_path, cfg, llm="extractive", split="dev", out_dir=tmp / "held", progress=False)
    with pytest.raises(H.EvalError, match="unknown split"):
        H.run_eval(es_path, cfg, llm="extractive", split="test", out_dir=tmp / "x", progress=False)
    # the CLI: a dev run keeps each follow-up with its parent (q4 after q3)
    assert main(["eval", str(es_path), "--llm", "extractive", "--split", "dev", "--out", str(tmp / "dev"), "--no-progress"]) == 0
    rows = [json.loads(x) for x in (tmp / "dev" / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["qid"] for r in rows] == ["q1", "q3", "q4", "q6"] and all(r["split"] == "dev" for r in rows)


def test_naive_baseline_through_the_harness(env):
    """`naive:fake` beside the extractive assistant: same questions, same scoring; its rows carry its
    own chunks (relevance from the same evidence quotes), no citations, refusal from its text."""
    from rag.llm.backends import FakeChatModel

    tmp, cfg, es_path = env

    def respond(messages):
        q = str(messages[-1].content)  # the human message: the question
        return "哈尔滨国际冰雪节创办于1985年。" if "创办" in q else "无法回答。"

    run = H.run_eval(es_path, cfg, compare=["llm=extractive,naive:fake"], chat_model=FakeChatModel(responses=respond),
                     out_dir=tmp / "naive", progress=False, sweep_modes=("bm25", "hybrid"))
    assert [c.name for c in run.configs] == ["extractive/hybrid/k5", "naive:fake/dense/k4"]
    nv = {r["qid"]: r for r in run.rows if r["config"] == "naive:fake/dense/k4"}
    ex = {r["qid"]: r for r in run.rows if r["config"] == "extractive/hybrid/k5"}
    assert list(nv) == list(ex) == ["q1", "q2", "q3", "q4", "q5", "q6"]
    n_chunks = run.info["naive"]["n_chunks"]
    for r in nv.values():
        assert r["citations"] == [] and set(r["retrieved"]) == {"dense"} and len(r["hits"]) == min(4, n_chunks)
        assert all("#lc" in c for quote in r["relevant_chunks"] for c in quote)  # its own chunks' relevance
        assert r["retrieval_query"] == r["question"]  # no condensation
    assert nv["q1"]["scores"]["contains"] == 1.0 and not nv["q1"]["refused"]
    assert nv["q5"]["refused"] and nv["q2"]["refused"] and nv["q2"]["scores"]["contains"] == 0.0
    m = run.metrics["configs"]["naive:fake/dense/k4"]
    assert m["retrieval_sweep"] == {} and m["retrieval_seen"]["chunk"]["n"] == 4 and m["citation"]["precision"] is None
    assert m["refusal"]["refusal_accuracy"] == 1.0 and m["n_rewritten_query"] == 0
    # the assistant's follow-up was retrieved (and its depth-20 sweep searched) with its condensed question
    q4 = ex["q4"]
    assert q4["retrieval_query"] == q4["standalone_question"] != q4["question"]
    kb = H.build_corpus(load_beir(es_path), cfg, progress=False).kb
    assert q4["retrieved"]["bm25"] == [h.chunk.chunk_id for h in kb.search(q4["standalone_question"], k=H.DEPTH, mode="bm25")]
    assert run.metrics["configs"]["extractive/hybrid/k5"]["n_rewritten_query"] >= 1
    report = (run.out_dir / "report.md").read_text(encoding="utf-8")
    assert "naive baseline" in report and "## Summary by split" in report and "model's passages" in report
