"""rag.chunk.sections: sentences, tokens, headings and nesting, packing, golden chunks of the seeds, and
invariants over every chunk of every seed (no boilerplate, exact spans, stable ids, limits).

Golden files: tests/golden/chunks_<doc_id>.json; regenerate deliberately with
`UPDATE_GOLDEN=1 python3 -m pytest tests/test_chunking.py` and review the diff by eye.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from rag.chunk.headings import heading_marker, is_title_candidate
from rag.chunk.sections import (
    chunk_document,
    chunk_offsets,
    chunk_orig_span,
    count_tokens,
    parse_sections,
    split_sentences,
)
from rag.ingest.clean import OCR_CHAR_FIXES, clean_text
from rag.ingest.repair import SITE_BLURB
from rag.config import ChunkConfig
from rag.ingest.load import load_paths
from rag.types import Document

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
GOLDEN = ROOT / "tests" / "golden"
BOILERPLATE = [
    "您當前的位置", "您当前的位置", "搜 索", "關注東北網", "关注东北网", "Qzone", "微博\n", "責任編輯", "责任编辑",
    "![]()", "|||", "下一页", "尾页", "來源:東北網", "浏览次数", "\u201a", "\u201b", "设臵", "-1-", "本站精心",
]
SUBSTITUTES = {**{v: k for k, v in OCR_CHAR_FIXES.items()}, "“": "\u201a", "”": "\u201b", "…": "\u201e", " ": "\t\u3000\xa0\u2002\u2003\n\r"}


def assert_offsets(text: str, res) -> None:
    """Every clean character comes from the original character its offset points at."""
    assert len(res.offsets) == len(res.clean)
    for i, ch in enumerate(res.clean):
        orig = text[res.offsets[i]]
        assert ch == orig or orig in SUBSTITUTES.get(ch, "") or (ch == "\n" and orig.isspace()), (i, ch, orig)
    assert list(res.offsets) == sorted(res.offsets)


def _bare(s: str) -> str:
    """Heading text as a section carries it: without marker punctuation ('#', final '。', ':')."""
    return re.sub(r"[\s#。！？!?.:：、]", "", s)


def make_doc(text: str, doc_id: str = "t", fmt: str = "text") -> Document:
    r = clean_text(text, fmt=fmt)
    return Document(doc_id, f"{doc_id}.txt", r.title or doc_id, text, r.clean, r.offsets, dict(r.metadata))


@pytest.fixture(scope="module")
def seed_docs():
    docs, failures = load_paths([SEEDS])
    assert not failures and len(docs) == 5
    return docs


@pytest.fixture(scope="module")
def seed_chunks(seed_docs):
    return {d.doc_id: chunk_document(d, ChunkConfig()) for d in seed_docs}


# ---- sentences and tokens


def test_count_tokens_offline():
    assert count_tokens("") == 0
    assert count_tokens("hello world") == 2
    assert count_tokens("中文") >= 1


def test_split_sentences_roundtrip_and_closers():
    text = "他说：“好。”然后走了！\n第二行；第三句？没有结尾"
    parts = split_sentences(text)
    assert "".join(parts) == text
    assert parts == ["他说：“好。”", "然后走了！\n", "第二行；", "第三句？", "没有结尾"]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("增长1.5万人次。选准载体是关键。", ["增长1.5万人次。", "选准载体是关键。"]),
        ("1.选准载体是关键。2.配强班子。", ["1.选准载体是关键。", "2.配强班子。"]),
        ("真的吗？！是的……好吧", ["真的吗？！", "是的……", "好吧"]),
        ("（括号里的话。）后面", ["（括号里的话。）", "后面"]),
        ("He left. She stayed! OK?", ["He left. ", "She stayed! ", "OK?"]),
        ("a\n\n\nb", ["a\n\n\n", "b"]),
        ("『一幫』就是幫助。『兩抓』", ["『一幫』就是幫助。", "『兩抓』"]),
    ],
)
def test_split_sentences_cases(text, expected):
    assert split_sentences(text) == expected


def test_split_sentences_roundtrip_on_seeds(seed_docs):
    for d in seed_docs:
        assert "".join(split_sentences(d.text)) == d.text
        assert "".join(split_sentences(d.clean)) == d.clean


# ---- heading styles


@pytest.mark.parametrize(
    "line,style,heading",
    [
        ("第三篇:党建示范点", "article", "第三篇:党建示范点"),
        ("第一章 总则", "chapter", "第一章 总则"),
        ("第二节 组织建设", "section", "第二节 组织建设"),
        ("一、抓領導,以上帶下,增強示范性", "cn-num", "一、抓領導,以上帶下,增強示范性"),
        ("（一）立足长远，实施党建“三大工程”", "cn-paren", "（一）立足长远，实施党建“三大工程”"),
        ("(二)提高党员主体地位", "cn-paren", "(二)提高党员主体地位"),
        ("㈠总体要求", "cn-paren", "㈠总体要求"),
        ("1.选准载体是关键。全面把握党建工作的载体，并根据社会主义市场经济条件下的新情况选择合适的载体。", "num-dot1", "1.选准载体是关键"),
        ("2.1 工作目标", "num-dot2", "2.1 工作目标"),
        ("1、“党性教育”活动。以“三个一”活动为载体，对党员进行“讲党性、重品行、作表率”教育。", "num-dun", "1、“党性教育”活动"),
        ("(1)保障在任农村干部待遇。坚持“绩效挂钩、激励先进、缩小差别、提高报酬”的原则，实行结构工资制。", "num-paren", "(1)保障在任农村干部待遇"),
        ("（2）保障离任农村干部生活", "num-paren", "（2）保障离任农村干部生活"),
        ("①组织学习", "circled", "①组织学习"),
        ("【大门外】", "bracket", "【大门外】"),
        ("## 二级标题", "md2", "二级标题"),
        ("附件：领导小组名单", "appendix", "附件：领导小组名单"),
        ("一、健全党组织制度，发挥党委班子的带头作用 俗话说:“火车跑得快全靠车头带”，在创建过程中我们以中心组学习为龙头，规范党委班子的各项制度。", "cn-num", "一、健全党组织制度，发挥党委班子的带头作用"),
        ("第五篇:作三:党建示范点解说词(新形势新任务定!)", "article", "第五篇:作三:党建示范点解说词(新形势新任务定!)"),
    ],
)
def test_heading_markers(line, style, heading):
    m = heading_marker(line)
    assert m is not None and m.style == style
    assert m.text(line) == heading


@pytest.mark.parametrize(
    "line",
    [
        "2010年，我们开展了活动。",
        "12 个单位参加",
        "1.5万人次参加了培训。",
        "一是推进支部建设工程。",
        "第11期",
        "1、到建党90周年时，我局要树立和表彰一批带动效应强的先进基层党组织和优秀共产党员典型，为创先争优活动树立比学赶超的榜样。",
        "●实施年功奖八年来",
    ],
)
def test_not_headings(line):
    assert heading_marker(line) is None


def test_title_candidates():
    assert is_title_candidate("找准活動與中心工作的結合點")
    assert is_title_candidate("坚持以人为本，落实待遇保障，稳定农村干部队伍")
    for line in ["这是我局的国库支付中心。", "字幕:泰豪科技股份有限公司总经理黄代放", "●漳漕村外出创业青年回村任党支部书记",
                 "尾声:", "现在我们来到的是我校党支部委员会办公室，办公室", "面", "一、基本情况",
                 "图为党员志愿者在社区服务", "（图为会议现场）", "▲党员志愿者在服务", "本报记者 王五 摄"]:
        assert not is_title_candidate(line), line


def sections_of(text: str) -> list[tuple[tuple[str, ...], str]]:
    doc = make_doc(text)
    return [(s.path, doc.clean[s.start : s.end]) for s in parse_sections(doc.clean)]


def test_nesting_by_first_appearance_and_article_reset():
    text = (
        "第一篇:甲文章\n"
        "开头的正文。\n"
        "一、第一部分\n"
        "上部的正文。\n"
        "（一）第一小节\n"
        "小节正文。\n"
        "1、第一条\n"
        "条目正文。\n"
        "二、第二部分\n"
        "下部正文。\n"
        "第二篇:乙文章\n"
        "1、乙的第一条\n"
        "乙的正文。\n"
        "(一)乙的小节\n"
        "乙小节正文。\n"
    )
    assert sections_of(text) == [
        (("第一篇:甲文章",), "开头的正文。"),
        (("第一篇:甲文章", "一、第一部分"), "上部的正文。"),
        (("第一篇:甲文章", "一、第一部分", "（一）第一小节"), "小节正文。"),
        (("第一篇:甲文章", "一、第一部分", "（一）第一小节", "1、第一条"), "条目正文。"),
        (("第一篇:甲文章", "二、第二部分"), "下部正文。"),
        # a new article resets the stack: here 1、 comes first, so (一) nests under it
        (("第二篇:乙文章", "1、乙的第一条"), "乙的正文。"),
        (("第二篇:乙文章", "1、乙的第一条", "(一)乙的小节"), "乙小节正文。"),
    ]


def test_markdown_levels_and_brackets_and_short_titles():
    text = (
        "## 背景\n"
        "背景正文。\n"
        "# 总论\n"
        "总论正文。\n"
        "### 细节\n"
        "细节正文。\n"
        "【大门外】\n"
        "各位领导，大家好。\n"
    )
    assert sections_of(text) == [
        (("背景",), "背景正文。"),
        (("总论",), "总论正文。"),
        (("总论", "细节"), "细节正文。"),
        (("总论", "细节", "【大门外】"), "各位领导，大家好。"),
    ]


def test_short_title_lines_blocks_and_subtitles():
    text = (
        "按：现将这些发言予以刊发，供各级党组织学习。\n\n"
        "紮實推進學習型\n\n"
        "黨組織建設和創先爭優活動開展\n\n"
        "中共安達市委\n\n"
        "按照省、市委的部署和要求，我們以增強黨員乾部學習力為目標。\n\n"
        "一、抓領導,以上帶下,增強示范性\n\n"
        "學習型黨組織建設能否取得實效，關鍵在縣一級。\n\n"
        "讓學習成為習慣 讓黨員當好表率\n\n"
        "哈爾濱市道外區南馬路小學黨支部\n\n"
        "我們道外區南馬路小學始建於1919年。\n\n"
        "党性铸师魂 党风促作风\n"
        "——龙庆民族中学党建工作现场推进会解说词\n"
        "【大门外】\n"
        "各位领导，同志们，大家好。\n"
    )
    assert sections_of(text) == [
        ((), "按：现将这些发言予以刊发，供各级党组织学习。"),
        (("紮實推進學習型 黨組織建設和創先爭優活動開展 中共安達市委",), "按照省、市委的部署和要求，我們以增強黨員乾部學習力為目標。"),
        (("紮實推進學習型 黨組織建設和創先爭優活動開展 中共安達市委", "一、抓領導,以上帶下,增強示范性"), "學習型黨組織建設能否取得實效，關鍵在縣一級。"),
        # a title of the same style closes the numbered sections under the previous one
        (("讓學習成為習慣 讓黨員當好表率 哈爾濱市道外區南馬路小學黨支部",), "我們道外區南馬路小學始建於1919年。"),
        (("党性铸师魂 党风促作风 ——龙庆民族中学党建工作现场推进会解说词", "【大门外】"), "各位领导，同志们，大家好。"),
    ]


def test_inline_headings_and_list_of_paragraphs():
    text = (
        "㈢示范带动、整改提高(2011年7月-2012年6月)。\n"
        "1、到建党90周年时，我局要树立和表彰一批带动效应强的先进基层党组织和优秀共产党员典型，为创先争优活动树立榜样。\n"
        "2、坚持抓好整改任务的落实。\n"
        "3、对创先争优活动中梳理出的突出问题，要坚持边创建、边整改、边落实，在开展活动中解决问题，在解决问题中深化活动效果。\n"
        "㈣系统总结，完善机制。这一阶段重点抓好四项工作：一是展示成果。二是搞好总结。\n"
    )
    secs = sections_of(text)
    # 1、2、3、 are numbered paragraphs (mostly long): the short "2、" is not made a heading
    assert [s[0] for s in secs] == [("㈢示范带动、整改提高(2011年7月-2012年6月)",), ("㈣系统总结，完善机制",)]
    assert secs[0][1].startswith("1、到建党90周年时") and "2、坚持抓好整改任务的落实。" in secs[0][1]
    assert secs[1][1] == "这一阶段重点抓好四项工作：一是展示成果。二是搞好总结。"


def test_heading_without_text_is_demoted_not_lost():
    text = "一、只有标题\n二、第二部分\n正文在这里。\n这是最后一行\n"
    doc = make_doc(text)
    chunks = chunk_document(doc)
    all_text = "".join(c.text for c in chunks) + "".join("".join(c.section) for c in chunks)
    for piece in ("一、只有标题", "二、第二部分", "正文在这里。", "这是最后一行"):
        assert piece in all_text


# ---- packing


LONG = "".join(f"第{i}句讲的是基层党组织建设的第{i}个方面，内容比较具体。" for i in range(1, 41))


def test_long_section_split_at_sentence_ends_with_overlap():
    doc = make_doc("一、很长的一节\n" + LONG + "\n")
    cfg = ChunkConfig(max_tokens=120, min_tokens=20, overlap_sentences=1)
    chunks = chunk_document(doc, cfg)
    assert len(chunks) > 3
    for a, b in zip(chunks, chunks[1:]):
        assert count_tokens(a.text) <= 120
        assert a.text.endswith("。") and b.text.startswith("第")
        last = split_sentences(a.text)[-1]
        assert b.text.startswith(last)  # one whole sentence of overlap
    assert all(c.section == ("一、很长的一节",) for c in chunks)
    assert [c.chunk_id for c in chunks] == [f"t#{i}" for i in range(len(chunks))]


def test_no_overlap_when_disabled_and_tail_merged():
    doc = make_doc(LONG + "最后。\n")
    cfg = ChunkConfig(max_tokens=200, min_tokens=60, overlap_sentences=0)
    chunks = chunk_document(doc, cfg)
    joined = "".join(c.text for c in chunks)
    assert joined == doc.clean  # no overlap, nothing lost
    assert all(count_tokens(c.text) >= 60 for c in chunks)  # "最后。" did not stay alone


def test_sentence_longer_than_limit_is_cut_at_clauses():
    sentence = "，".join(f"第{i}项工作要求各级党组织认真落实" for i in range(60)) + "。"
    doc = make_doc(sentence)
    chunks = chunk_document(doc, ChunkConfig(max_tokens=64, min_tokens=8, overlap_sentences=1))
    assert len(chunks) > 5
    assert all(count_tokens(c.text) <= 64 for c in chunks)
    assert all(c.text.endswith(("，", "。")) for c in chunks)
    no_clause = "党" * 500
    chunks = chunk_document(make_doc(no_clause), ChunkConfig(max_tokens=50, min_tokens=5))
    assert all(count_tokens(c.text) <= 50 for c in chunks) and "".join(c.text for c in chunks) == no_clause


def test_attribution_stays_with_quote():
    text = "“这项工作很重要，必须抓紧抓好。”公司总经理刘恩福说。下一句话在这里。"
    doc = make_doc(text)
    from rag.chunk.pack import _units

    units = _units(doc.clean, 0, len(doc.clean), ChunkConfig())
    assert doc.clean[units[0].start : units[0].end] == "“这项工作很重要，必须抓紧抓好。”公司总经理刘恩福说。"


def test_chunk_orig_span_for_a_quote(seed_chunks, seed_docs):
    docs = {d.doc_id: d for d in seed_docs}
    c = next(c for c in seed_chunks["003_12bf688862e8a96f"] if "“二三四新机制”" in c.text)
    i = c.text.index("“二三四新机制”")
    s, e = chunk_orig_span(c, i, i + len("“二三四新机制”"))
    assert docs[c.doc_id].text[s:e] == "\u201a二三四新机制\u201b"


# ---- the seeds: invariants over every chunk


def test_no_boilerplate_in_any_chunk(seed_chunks):
    for doc_id, chunks in seed_chunks.items():
        assert chunks, doc_id
        for c in chunks:
            for token in BOILERPLATE:
                assert token not in c.text, (c.chunk_id, token)


def test_every_chunk_maps_to_its_exact_original_span(seed_chunks, seed_docs):
    docs = {d.doc_id: d for d in seed_docs}
    for chunks in seed_chunks.values():
        for c in chunks:
            doc = docs[c.doc_id]
            offs = chunk_offsets(c)
            assert len(offs) == len(c.text)
            assert offs[0] == c.start and offs[-1] == c.end - 1
            span = doc.text[c.start : c.end]
            for ch, o in zip(c.text, offs):
                assert c.start <= o < c.end
                orig = doc.text[o]
                assert ch == orig or orig in SUBSTITUTES.get(ch, "") or (ch == "\n" and orig.isspace()), (c.chunk_id, ch, orig)
            # and the other way round: what the span holds beyond the chunk text is only whitespace
            # (joined lines, indentation) or removed residue like a glued page number
            covered = set(offs)
            extra = "".join(doc.text[o] for o in range(c.start, c.end) if o not in covered)
            extra = SITE_BLURB.sub("", extra)  # a removed "本站…整理…" blurb sentence
            assert re.fullmatch(r"[\s\-\d\u201e]*", extra), (c.chunk_id, extra)
            assert span.strip()


def test_limits_and_section_paths(seed_chunks, seed_docs):
    docs = {d.doc_id: d for d in seed_docs}
    cfg = ChunkConfig()
    for chunks in seed_chunks.values():
        for c in chunks:
            assert count_tokens(c.text) <= cfg.max_tokens, c.chunk_id
            assert c.metadata["tokens"] == count_tokens(c.text)
            doc = docs[c.doc_id]
            # every heading of the path stands, in order, above the chunk in the (clean) file
            clean_start = list(doc.offsets).index(c.start)
            above = re.sub(r"\s", "", doc.clean[:clean_start])
            pos = 0
            for h in c.section:
                k = above.find(re.sub(r"\s", "", h), pos)
                assert k >= 0, (c.chunk_id, h)
                pos = k + 1
            # the chunk's text starts with body text, not with its own heading
            if c.section:
                assert not c.text.startswith(c.section[-1]), c.chunk_id
            assert c.title == doc.title and c.metadata.get("format") == "text"
            assert c.embed_text.startswith(c.heading)


def test_no_text_lost(seed_chunks, seed_docs):
    """Every clean character is in a chunk, or in a heading some chunk carries."""
    for d in seed_docs:
        chunks = seed_chunks[d.doc_id]
        covered = set()
        for c in chunks:
            covered.update(chunk_offsets(c))
        headings = {re.sub(r"\s", "", h) for c in chunks for h in c.section}
        heads = "\n".join(headings)
        pos = 0
        for line in d.clean.split("\n"):
            missing = "".join(ch for k, ch in enumerate(line) if d.offsets[pos + k] not in covered and not ch.isspace())
            pos += len(line) + 1
            if missing:
                assert _bare(missing) in _bare(heads), (d.doc_id, line[:40], missing)


def test_ids_stable_across_runs(seed_chunks):
    docs2, _ = load_paths([SEEDS])
    again = {d.doc_id: chunk_document(d, ChunkConfig()) for d in docs2}
    for doc_id, chunks in seed_chunks.items():
        assert [(c.chunk_id, c.start, c.end, c.section, c.text) for c in chunks] == [
            (c.chunk_id, c.start, c.end, c.section, c.text) for c in again[doc_id]
        ]


def test_smaller_limit_still_holds(seed_docs):
    cfg = ChunkConfig(max_tokens=96, min_tokens=16, overlap_sentences=1)
    for d in seed_docs:
        for c in chunk_document(d, cfg):
            assert count_tokens(c.text) <= 96, c.chunk_id


def test_expected_sections_in_the_ocr_file(seed_chunks):
    chunks = seed_chunks["003_12bf688862e8a96f"]
    by_start = {c.text[:8]: c for c in chunks}
    c = by_start["首先是企官带村官"]
    assert c.section == (
        "第三篇:党建示范点",
        "昔阳县在加强农村基层党建中推行 “两保三带四规范”的调查与思考",
        "二、“二三四新机制”的主要内容",
        "2、“三带”重在跨区域、多渠道选贤任能,依靠能人兴村,加快城乡一体化发展进程",
    )
    assert by_start["各位领导,同志们"].section[-1] == "【大门外】"
    assert by_start["室内有可容纳40"].section[-1] == "4、承揽党务会议职能"
    assert all("第四篇" not in c.section[0] or c.section == ("第四篇:小康示范点解说词",) for c in chunks if c.section)


# ---- golden files


def _golden_rows(chunks):
    return [{"id": c.chunk_id, "section": list(c.section), "start": c.start, "end": c.end, "text": c.text[:30]} for c in chunks]


@pytest.mark.parametrize("doc_id", ["002_9dcdbbc46c15fef6", "003_12bf688862e8a96f", "004_63ed4abae7436ac1"])
def test_golden_chunks(seed_chunks, doc_id):
    path = GOLDEN / f"chunks_{doc_id}.json"
    rows = _golden_rows(seed_chunks[doc_id])
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text("[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n", encoding="utf-8")
    assert path.exists(), f"missing {path}; run with UPDATE_GOLDEN=1 and review it"
    assert rows == json.loads(path.read_text(encoding="utf-8"))


# ---- the CLI


def test_cli_chunk_json_and_failures(tmp_path, capsys):
    from rag.apps.cli import main

    good = tmp_path / "good.txt"
    good.write_text("一、标题\n正文第一句。正文第二句。\n", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"")
    assert main(["chunk", str(tmp_path), "--json", "--max-tokens", "64"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["chunk_id"] for r in rows] == ["good#0"]
    assert rows[0]["section"] == ["一、标题"] and "offset_runs" not in rows[0]["metadata"]
    assert "bad.txt" in err and "empty" in err
    assert main(["chunk", str(tmp_path / "bad.txt")]) == 1
    assert main(["chunk", str(good)]) == 0
    out, _ = capsys.readouterr()
    assert "good#0" in out and "一、标题" in out


def test_regulation_articles_and_leaf_first_demotion():
    text = (
        "中国共产党基层组织选举工作条例\n"
        "第一章 总则\n"
        "第一条 为了规范党的基层组织选举工作，根据《中国共产党章程》，制定本条例。\n"
        "第二条 本条例适用于党的基层组织的选举工作。\n"
        "第二章 委员会的产生\n"
        "第三条 委员候选人应当具有下列条件：\n"
        "（一）具有较高的政治素质；\n"
        "（二）具有较强的组织能力。\n"
    )
    doc = make_doc(text)
    assert doc.title == "中国共产党基层组织选举工作条例"
    assert [(c.section, c.text) for c in chunk_document(doc)] == [
        (("第一章 总则", "第一条"), "为了规范党的基层组织选举工作，根据《中国共产党章程》，制定本条例。"),
        (("第一章 总则", "第二条"), "本条例适用于党的基层组织的选举工作。"),
        # (一)(二) have no text of their own: they are list items of 第三条, not headings
        (("第二章 委员会的产生", "第三条"), "委员候选人应当具有下列条件：\n（一）具有较高的政治素质；\n（二）具有较强的组织能力。"),
    ]


def test_markdown_document(tmp_path):
    from rag.ingest.load import load_file

    p = tmp_path / "notes.md"
    p.write_text(
        "# 项目说明\n\n这是一个说明文档，介绍项目的背景。\n\n## 安装\n\n- 第一步：安装依赖\n- 第二步：运行脚本\n\n"
        "| 名称 | 说明 |\n|------|------|\n| rag | 检索 |\n\n## 使用\n运行 `rag chunk` 即可查看分块结果，\n这一行是同一段落的续行。\n",
        encoding="utf-8",
    )
    doc = load_file(p)
    assert doc.title == "项目说明" and doc.metadata["format"] == "markdown"
    assert [(c.section, c.text) for c in chunk_document(doc)] == [
        ((), "这是一个说明文档，介绍项目的背景。"),
        (("安装",), "- 第一步：安装依赖\n- 第二步：运行脚本\n| 名称 | 说明 |\n| rag | 检索 |"),
        (("使用",), "运行 `rag chunk` 即可查看分块结果，这一行是同一段落的续行。"),
    ]


def test_one_huge_line_without_punctuation():
    doc = make_doc("党" * 60000)
    chunks = chunk_document(doc, ChunkConfig(max_tokens=256, min_tokens=32))
    assert "".join(c.text for c in chunks) == doc.clean
    assert all(count_tokens(c.text) <= 256 for c in chunks)


def test_repeated_heading_glued_to_text_by_ocr():
    text = (
        "第一篇:解说词汇编\n"
        "党建示范点解说词\n"
        "尊敬的各位领导，欢迎你们来到财政局指导工作。\n"
        "走廊宣传版面\n"
        "我们利用走廊建成了党建宣传长廊。\n"
        "党建示范点解说词这是一个持续开展了八年的党建活动。\n"
        "一、察民情 解民难\n"
        "一大早，区政协主任就来到了西梅村。\n"
    )
    assert sections_of(text) == [
        (("第一篇:解说词汇编", "党建示范点解说词"), "尊敬的各位领导，欢迎你们来到财政局指导工作。"),
        (("第一篇:解说词汇编", "走廊宣传版面"), "我们利用走廊建成了党建宣传长廊。"),
        (("第一篇:解说词汇编", "党建示范点解说词"), "这是一个持续开展了八年的党建活动。"),
        (("第一篇:解说词汇编", "党建示范点解说词", "一、察民情 解民难"), "一大早，区政协主任就来到了西梅村。"),
    ]


def test_shuffled_seed_lines_keep_all_invariants():
    """Property check on 30 documents made of seed lines in random order with random blank
    lines, indentation, CRLF, page numbers and widgets (fixed random seed): cleaning and
    chunking never fail, spans map back exactly, limits hold and no text is lost."""
    import random

    rng = random.Random(20261125)
    pool = [ln for p in sorted(SEEDS.glob("*.txt")) for ln in p.read_text(encoding="utf-8").split("\n") if ln.strip()]
    noise = ["", "", "  ", "- 3 -", "搜 索", "第 2 页", "\t"]
    cfg = ChunkConfig(max_tokens=128, min_tokens=24, overlap_sentences=1)
    for k in range(30):
        lines = []
        for _ in range(rng.randint(1, 40)):
            ln = rng.choice(pool)
            if rng.random() < 0.3:
                cut = rng.randint(1, max(1, len(ln) - 1))
                lines.extend([ln[:cut], ln[cut:]])  # a broken line
            else:
                lines.append(("　　" if rng.random() < 0.2 else "") + ln)
            if rng.random() < 0.3:
                lines.append(rng.choice(noise))
        text = ("\r\n" if k % 5 == 0 else "\n").join(lines)
        r = clean_text(text)
        assert_offsets(text, r)
        if not r.clean.strip():
            continue
        doc = Document(f"r{k}", "r.txt", r.title or "r", text, r.clean, r.offsets, {})
        chunks = chunk_document(doc, cfg)
        covered = set()
        for c in chunks:
            offs = chunk_offsets(c)
            assert len(offs) == len(c.text) and offs[0] == c.start and offs[-1] == c.end - 1
            assert count_tokens(c.text) <= 128
            covered.update(offs)
        heads = "\n".join(re.sub(r"\s", "", h) for c in chunks for h in c.section)
        pos = 0
        for line in doc.clean.split("\n"):
            missing = "".join(ch for j, ch in enumerate(line) if doc.offsets[pos + j] not in covered and not ch.isspace())
            pos += len(line) + 1
            assert not missing or _bare(missing) in _bare(heads), (k, line[:30], missing)


def test_markdown_front_matter_and_code_fences(tmp_path):
    from rag.ingest.load import load_file

    p = tmp_path / "guide.md"
    p.write_text(
        "---\ntitle: 部署指南\ndate: 2021-03-04\n---\n\n## 安装\n\n先安装依赖，\n再运行脚本。\n\n```bash\n# 安装依赖\npip install -e .\n```\n\n## 使用\n\n运行命令即可。\n",
        encoding="utf-8",
    )
    doc = load_file(p)
    assert doc.title == "部署指南" and doc.metadata["date"] == "2021-03-04"
    assert "title:" not in doc.clean
    chunks = chunk_document(doc)
    assert [c.section for c in chunks] == [("安装",), ("使用",)]
    assert chunks[0].text == "先安装依赖，再运行脚本。\n```bash\n# 安装依赖\npip install -e .\n```"


def test_bad_limits_are_a_clear_error(capsys):
    from rag.apps.cli import main

    assert main(["chunk", str(SEEDS / "001_75b9d2d6f7b67755.txt"), "--max-tokens", "4"]) == 2
    assert "chunk.max_tokens = 4 (command line): must be between 16" in capsys.readouterr().err


def test_table_rows_are_not_titles():
    doc = make_doc("一、人员名单\n单位 | 人数\n城关镇 | 12\n合计人数为十二人，均已到岗。\n")
    (c,) = chunk_document(doc)
    assert c.section == ("一、人员名单",) and c.text.startswith("单位 | 人数\n城关镇 | 12")
