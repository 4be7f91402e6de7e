"""ui.render: escaping, citation links, quote highlighting, refusal view (pure functions, no Gradio)."""

from __future__ import annotations

import html
from html.parser import HTMLParser

import pytest

from rag.types import Answer, Chunk, Citation, Hit
from ui import render, sources

XSS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(2)">',
    "[点我](javascript:alert(3))",
    "![img](http://example.com/x.png)",
    "https://example.com/autolink",
    "${alert(4)} `code` $x$ **粗** _斜_",
    '" onmouseover="alert(5)',
    "&lt;already escaped&gt; &amp;",
]

ALLOWED = {
    "a": {"class", "href", "title"},
    "span": {"class", "title", "aria-hidden"},
    "br": set(),
    "strong": set(),
    "div": {"class", "role", "aria-live"},
    "mark": {"class"},
    "article": {"class", "id"},
    "header": set(),
    "blockquote": {"class"},
    "details": {"class", "id", "open"},
    "summary": set(),
    "ul": {"class"},
    "li": {"class"},
    "table": {"class"},
    "thead": set(),
    "tbody": set(),
    "tr": set(),
    "th": set(),
    "td": {"class", "title"},
}


class _Tags(HTMLParser):
    """Collects (tag, attrs) and the visible text of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(fragment: str) -> _Tags:
    p = _Tags()
    p.feed(fragment)
    p.close()
    return p


def assert_safe(fragment: str) -> _Tags:
    """Only our own tags/attributes; every link is an in-page #src-/#near- anchor."""
    p = parse(fragment)
    for tag, attrs in p.tags:
        assert tag in ALLOWED, f"unexpected tag <{tag}> in {fragment!r}"
        extra = set(attrs) - ALLOWED[tag]
        assert not extra, f"unexpected attributes {extra} on <{tag}>"
        if tag == "a":
            assert attrs["href"].startswith("#src-"), attrs["href"]
    assert "javascript:" not in fragment.lower()
    assert "${" not in fragment
    return p


def chunk(n: int, text: str, *, doc: str = "doc", title: str = "标题", section=("一、总则",), meta=None) -> Chunk:
    return Chunk(
        chunk_id=f"{doc}#{n}",
        doc_id=doc,
        n=n,
        title=title,
        section=tuple(section),
        text=text,
        start=0,
        end=len(text),
        source=f"files/{doc}.txt",
        metadata=meta if meta is not None else {"date": "2010-11-26", "source_name": "東北網"},
    )


def hit(c: Chunk, rank: int = 1) -> Hit:
    return Hit(chunk=c, score=1.0 / rank, rank=rank, ranks={"dense": rank, "bm25": rank + 1})


def cite(n: int, c: Chunk, quote: str, *, supported: bool = True) -> Citation:
    return Citation(
        n=n,
        chunk_id=c.chunk_id,
        doc_id=c.doc_id,
        title=c.title,
        section=c.section,
        source=c.source,
        start=c.start,
        end=c.end,
        quote=quote,
        quote_start=0,
        quote_end=len(quote),
        support=0.9 if supported else 0.1,
        supported=supported,
    )


# ---------------------------------------------------------------- escaping


@pytest.mark.parametrize("s", XSS + ["普通文本：甲、乙（丙）！", "a\\b|c~d#e_f*g"])
def test_esc_round_trips_to_the_same_text(s):
    # what the browser shows after decoding entities is exactly the input
    assert html.unescape(render.esc(s)) == s
    assert html.unescape(render.esc(s, quote=True)) == s


def test_esc_neutralises_markup_and_markdown():
    out = render.esc('<b a="1">[x](javascript:y)</b>', quote=True)
    for raw in "<>\"[]():":
        assert raw not in out
    assert "&lt;b a=&quot;1&quot;&gt;" in out
    # the five HTML characters get exactly html.escape's entities
    assert render.esc("&<>\"'", quote=True) == html.escape("&<>\"'", quote=True)


# ---------------------------------------------------------------- answers and markers


def test_markers_become_links_to_their_cards():
    c1, c2 = chunk(0, "甲。"), chunk(1, "乙。")
    out = render.answer_html("甲是真的【1】，乙也是【2】。", [cite(1, c1, "甲。"), cite(2, c2, "乙。")], turn=3)
    p = assert_safe(out)
    hrefs = [a["href"] for t, a in p.tags if t == "a"]
    assert hrefs == ["#src-3-1", "#src-3-2"]
    assert "".join(p.text) == "甲是真的【1】，乙也是【2】。"  # visible text unchanged


def test_marker_lists_split_and_unknown_markers_do_not_link():
    c1, c2 = chunk(0, "甲。"), chunk(1, "乙。")
    out = render.answer_html("见【1、2】和【 7 】", [cite(1, c1, "甲。"), cite(2, c2, "乙。")], turn=0)
    p = assert_safe(out)
    assert [a["href"] for t, a in p.tags if t == "a"] == ["#src-0-1", "#src-0-2"]
    missing = [a for t, a in p.tags if t == "span" and a.get("class") == "cite-missing"]
    assert len(missing) == 1 and "【7】" in out


def test_weak_citation_is_marked():
    c1 = chunk(0, "甲。")
    out = render.answer_html("甲【1】", [cite(1, c1, "甲。", supported=False)])
    assert 'class="cite cite-weak"' in out


def test_streaming_markers_link_to_evidence_by_position():
    hits = [hit(chunk(i, f"段落{i}。"), i + 1) for i in range(3)]
    out = render.streaming_message_html("根据【3】可知", turn=1, hits=hits)
    p = assert_safe(out)
    assert [a["href"] for t, a in p.tags if t == "a"] == ["#src-1-3"]
    assert "typing" in out


def test_streaming_raw_marker_forms_link_like_the_citation_parser_reads_them():
    # raw model text may use any form rag.cite.resolve accepts; each number links, shown canonical
    hits = [hit(chunk(i, f"段落{i}。"), i + 1) for i in range(3)]
    out = render.streaming_message_html("甲[1]，乙【2-3】", turn=0, hits=hits)
    p = assert_safe(out)
    assert [a["href"] for t, a in p.tags if t == "a"] == ["#src-0-1", "#src-0-2", "#src-0-3"]
    assert "".join(p.text).startswith("甲【1】，乙【2】【3】")


@pytest.mark.parametrize("payload", XSS)
def test_answer_text_cannot_inject(payload):
    c1 = chunk(0, "甲。")
    out = render.answer_html(f"{payload}【1】{payload}", [cite(1, c1, "甲。")], turn=0)
    p = assert_safe(out)
    shown = f"{payload}【1】{payload}".replace("**粗**", "粗")  # bold is the one rendering kept
    assert "".join(p.text) == shown


def test_bold_and_line_breaks_survive():
    out = render.answer_html("**要点**：\n第一【1】", [cite(1, chunk(0, "x"), "x")])
    assert "<strong>要点</strong>" in out and "<br>" in out


# ---------------------------------------------------------------- highlighting


def test_find_quote_exact_whitespace_and_script():
    passage = "学习型党组织建设很重要。关键在县一级。因此实施了措施。"
    assert passage[slice(*sources.find_quote(passage, "关键在县一级。"))] == "关键在县一级。"
    # OCR line break inside the sentence of the passage: 关键在\n县一级
    p2 = "学习型党组织建设。关键在\n县 一级。后文。"
    a, b = sources.find_quote(p2, "关键在县一级。")
    assert p2[a:b] == "关键在\n县 一级。"
    # passage in traditional script, quote in simplified
    p3 = "學習型黨組織。關鍵在縣一級。"
    a, b = sources.find_quote(p3, "关键在县一级")
    assert p3[a:b] == "關鍵在縣一級"
    assert sources.find_quote(p3, "完全无关的句子") is None
    assert sources.find_quote(p3, "") is None


def test_highlight_wraps_exactly_the_quote():
    passage = "前文<b>。关键在县一级。后文"
    out, found = sources.highlight(passage, "关键在县一级。")
    assert found
    before, rest = out.split('<mark class="quote">', 1)
    inside, after = rest.split("</mark>", 1)
    assert html.unescape(before) == "前文<b>。"  # 6 characters before the quote (escaped)
    assert html.unescape(inside) == "关键在县一级。"
    assert html.unescape(after) == "后文"


def test_citation_card_shows_title_section_date_source_and_quote():
    c = chunk(4, "第一句。被引用的句子在这里。第三句。", title="《报告》", section=("一、总则", "（二）细则"))
    card = sources.citation_card(cite(2, c, "被引用的句子在这里。"), c, turn=5)
    p = assert_safe(card)
    text = "".join(p.text)
    assert ('article', {'class': 'src-card', 'id': 'src-5-2'}) in p.tags
    for want in ("【2】", "《报告》", "一、总则 › （二）细则", "2010-11-26", "東北網", "文件 doc.txt"):
        assert want in text, want
    # the file name is shown, the full path and chunk id sit in the tooltip
    assert ("span", {"class": "m-file", "title": "files/doc.txt · doc#4"}) in p.tags
    assert '<mark class="quote">被引用的句子在这里。</mark>' in card


def test_citation_card_quote_not_in_passage_is_still_shown():
    c = chunk(0, "段落里没有这句话。")
    card = sources.citation_card(cite(1, c, "另一句话。"), c, turn=0)
    assert "quote-only" in card and "另一句话。" in card


@pytest.mark.parametrize("payload", XSS)
def test_document_text_and_metadata_cannot_inject(payload):
    c = chunk(0, f"前文{payload}被引用。后文", title=payload, section=(payload,), meta={"date": payload, "source_name": payload})
    card = sources.citation_card(cite(1, c, "被引用。"), c, turn=0)
    assert_safe(card)
    assert_safe(sources.hit_card(hit(c), 0, 1))


# ---------------------------------------------------------------- refusal and panel


def _answer(refused: bool, citations=(), hits=(), text="答案") -> Answer:
    return Answer(
        question="问题<script>",
        text=text,
        citations=tuple(citations),
        refused=refused,
        hits=tuple(hits),
        timings={"total": 2.5},
        model="fake",
        grounded=bool(citations) and not refused,
    )


def test_refused_answer_shows_closest_passages():
    hits = [hit(chunk(i, f"最接近的段落{i}。", doc=f"d{i}"), i + 1) for i in range(7)]
    out = sources.sources_html(_answer(True, hits=hits), turn=2)
    p = parse(out)
    assert "refusal" in out
    ids = [a["id"] for t, a in p.tags if t == "article"]
    assert ids == [f"near-2-{i}" for i in range(1, 6)]  # the five closest, in rank order
    assert "最接近的段落0。" in "".join(p.text)


def test_refused_answer_without_hits():
    out = sources.sources_html(_answer(True), turn=0)
    assert "没有检索到任何段落" in out


def test_answered_sources_are_citation_cards_in_marker_order():
    c1, c2 = chunk(0, "甲。", doc="a"), chunk(0, "乙。", doc="b")
    a = _answer(False, citations=[cite(2, c2, "乙。"), cite(1, c1, "甲。")], hits=[hit(c1, 1), hit(c2, 2)])
    p = parse(sources.sources_html(a, turn=0))
    assert [x["id"] for t, x in p.tags if t == "article"] == ["src-0-1", "src-0-2"]


def test_footer_warns_when_ungrounded_or_refused():
    assert "没有可核实的引用" in render.answer_footer(_answer(False))
    assert "未能在知识库中找到" in render.answer_footer(_answer(True))
    c1 = chunk(0, "甲。")
    ok = render.answer_footer(_answer(False, citations=[cite(1, c1, "甲。")]))
    assert "ans-warn" not in ok and "2.5 s" in ok


def test_panel_newest_first_only_newest_open():
    out = sources.panel_html([(0, "第一问<b>", "A"), (1, "第二问", "B")])
    p = parse(out)
    details = [a for t, a in p.tags if t == "details"]
    assert [d["id"] for d in details] == ["turn-src-1", "turn-src-0"]
    assert "open" in details[0] and "open" not in details[1]
    assert "第一问&lt;b&gt;" in out


def test_status_and_documents_escape():
    s = render.status_html("检索：<img src=x onerror=alert(1)>")
    assert "<img" not in s and "spinner" in s
    docs = [{"doc_id": "x<y", "title": "<script>", "source": "a.txt", "n_chunks": 3, "date": "2020-01-01", "added": "2026-11-25T12:34:56"}]
    out = render.documents_html(docs)
    assert_safe(out)
    assert "1 个文档 · 3 个段落" in out and "2026-11-25 12&#58;34" in out
    report = render.index_report_html([("error", "<b>.exe", "不支持")])
    assert_safe(report)


# ---------------------------------------------------------------- claims (verified / unverified)

from rag.types import Claim  # noqa: E402

# "甲成立于1999年【1】。乙成立于2003年。"
#  甲0 成1 立2 于3 1 4 9 5 9 6 9 7 年8 → the verified claim is [0, 9); 【1】 is [9, 12), 。 is 12;
#  乙13 成14 立15 于16 2 17 0 18 0 19 3 20 年21 → the unverified claim is [13, 22); 。 is 22 (len 23)
CLAIMS_TEXT = "甲成立于1999年【1】。乙成立于2003年。"
VERIFIED = Claim("甲成立于1999年", 0, 9, "verified", (1,))
UNVERIFIED = Claim("乙成立于2003年", 13, 22, "unverified", (2,), ("2003年",))


def _claims_answer(text=CLAIMS_TEXT, claims=(VERIFIED, UNVERIFIED), question="甲和乙哪年成立？", standalone=""):
    c1, c2 = chunk(0, "甲在1999年成立。", doc="a"), chunk(0, "乙在2001年成立。", doc="b")
    cites = (cite(1, c1, "甲在1999年成立。"), cite(2, c2, "乙在2001年成立。", supported=False))
    return Answer(
        question=question, text=text, citations=cites, refused=False, hits=(hit(c1, 1), hit(c2, 2)),
        timings={"total": 1.0}, model="fake", standalone_question=standalone or question, grounded=True, claims=tuple(claims),
    )


def test_hand_made_claim_spans_are_right():
    for c in (VERIFIED, UNVERIFIED):
        assert CLAIMS_TEXT[c.start : c.end] == c.text
    assert CLAIMS_TEXT[VERIFIED.end : VERIFIED.end + 3] == "【1】"  # a verified claim's markers follow its end


def test_unverified_claim_is_marked_distinctly_and_never_checked():
    out = render.final_message_html(_claims_answer(), turn=0)
    p = assert_safe(out)
    unverified = (
        '<span class="claim claim-unverified" title="未能在资料中核实：2003年 · 所引段落【2】不支持这句话">'
        '乙成立于2003年<span class="claim-flag">未核实</span></span>'
    )
    assert unverified in out
    assert "✓" not in out  # no check badge anywhere in the bubble, least of all on the unverified span
    # the verified statement keeps its linked marker, right after it, and is not flagged
    assert '<span class="claim claim-verified" title="已核对：【1】">甲成立于1999年</span><a class="cite" href="#src-0-1"' in out
    assert [a["href"] for t, a in p.tags if t == "a"] == ["#src-0-1"]
    assert out.count("claim-flag") == 1
    # visible text: the answer, with only the label added after the unverified statement
    assert "".join(p.text).startswith("甲成立于1999年【1】。乙成立于2003年未核实。")
    assert "1 处陈述未能在资料中核实" in render.answer_footer(_claims_answer())


def test_unverified_claim_with_markup_is_escaped():
    text = '甲成立于1999年【1】。<script>alert(1)</script>乙[x](javascript:y)。'
    bad = Claim('<script>alert(1)</script>乙[x](javascript:y)', 13, len(text) - 1, "unverified", (), ('"><img onerror=alert(2)>',))
    assert text[bad.start : bad.end] == bad.text
    out = render.final_message_html(_claims_answer(text, (VERIFIED, bad)), turn=0)
    p = assert_safe(out)
    assert "<script" not in out and "<img" not in out
    spans = [a for t, a in p.tags if t == "span" and "claim-unverified" in a.get("class", "")]
    assert spans and spans[0]["title"] == '未能在资料中核实："><img onerror=alert(2)>'  # a tooltip, as text
    assert "<script>alert(1)</script>乙[x](javascript:y)未核实" in "".join(p.text)


def test_stale_claim_span_falls_back_to_the_claim_text():
    moved = Claim("乙成立于2003年", 0, 9, "unverified", (), ("2003年",))  # span points at the wrong words
    out = render.claims_html(_claims_answer(claims=(VERIFIED, moved)), turn=0)
    assert '">乙成立于2003年<span class="claim-flag">' in out
    assert 'claim-verified" title="已核对：【1】">甲成立于1999年</span>' in out


def test_understood_as_shown_above_a_follow_up_never_inside_the_answer():
    a = _claims_answer(question="那乙呢？", standalone="乙<b>哪一年成立？")
    out = render.final_message_html(a, turn=1)
    assert_safe(out)
    assert out.startswith('<div class="ans-understood">理解为：乙&lt;b&gt;哪一年成立？</div>')
    assert out.count("理解为") == 1 and "理解为" not in render.claims_html(a, 1)
    same = _claims_answer(question="甲和乙哪年成立？", standalone="甲和乙哪年成立？")
    assert "理解为" not in render.final_message_html(same, turn=0)


def test_refusal_shows_its_reason():
    reason = "资料中没有提到“2010年”，只提到2009年。"
    a = Answer("甲2010年做了什么？", "根据现有资料无法回答该问题。" + reason, (), True, (), {}, "fake",
               grounded=False, refusal_reason=reason)
    out = render.final_message_html(a, turn=0)
    assert_safe(out)
    assert f'<div class="refusal-reason">{render.esc(reason)}</div>' in out
    assert out.count("2009年") == 1


def test_passage_backing_one_statement_and_not_another_links_to_the_backing_card():
    c1 = chunk(0, "甲在1999年成立。", doc="a")
    good, bad = cite(1, c1, "甲在1999年成立。"), cite(1, c1, "甲在1999年成立。", supported=False)
    a = Answer("问", CLAIMS_TEXT, (bad, good), False, (hit(c1),), {}, "fake", grounded=True, claims=(VERIFIED, UNVERIFIED))
    assert "cite-weak" not in render.claims_html(a, 0)
    p = parse(sources.sources_html(a, 0))
    cards = [x for t, x in p.tags if t == "article"]
    assert cards[0] == {"class": "src-card", "id": "src-0-1"} and "id" not in cards[1]


def test_final_status_counts_verified_sources_and_unverified_statements():
    assert render.final_status_text(_claims_answer(), 1.23).startswith("完成：1 处核实的引用 · 1 处未核实（1.2 s）")
