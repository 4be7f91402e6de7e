import json

from rag.evaluate.evalsets import import_squad, load_beir, write_beir

SQUAD = {
    "data": [
        {
            "title": "梵語",
            "paragraphs": [
                {
                    "id": "p1",
                    "context": "歐洲對梵語的學術研究由陸特開創。",
                    "qas": [
                        {"id": "q1", "question": "誰開創了歐洲的梵語研究？", "answers": [{"text": "陸特", "answer_start": 11}]},
                        {"id": "q2", "question": "什麼不可回答？", "answers": [], "is_impossible": True},
                    ],
                },
                {"context": "第二段。", "qas": []},
            ],
        }
    ]
}


def test_import_squad_and_roundtrip(tmp_path):
    src = tmp_path / "tiny.json"
    src.write_text(json.dumps(SQUAD, ensure_ascii=False), encoding="utf-8")
    es = import_squad(src, name="tiny")
    assert set(es.corpus) == {"p1", "tiny-0-1"}  # dataset ids kept, generated otherwise
    assert es.qrels == {"q1": {"p1": 1}}  # unanswerable questions have no qrels
    assert es.answers["q1"]["evidence"][0] == {"doc_id": "p1", "quote": "陸特", "start": 11}
    assert es.corpus["p1"]["text"][11:13] == "陸特"
    assert es.answers["q2"]["answerable"] is False
    out = write_beir(es, tmp_path / "set")
    back = load_beir(out)
    assert back.qrels == es.qrels and set(back.queries) == {"q1", "q2"}
    assert back.question("q1") == "誰開創了歐洲的梵語研究？"
