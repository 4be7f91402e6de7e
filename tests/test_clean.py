"""rag.ingest.clean: boilerplate rules, OCR repair, head metadata, re-joining, offset map."""

from __future__ import annotations

import pytest

from rag.ingest.clean import (
    OCR_CHAR_FIXES,
    boilerplate_kind,
    clean_text,
    parse_date,
    parse_dateline,
    repair_line,
    splits_word,
    wrap_width,
)

# characters cleaning may put in place of the original one (the offset map points at the original)
SUBSTITUTES = {**{v: k for k, v in OCR_CHAR_FIXES.items()}, "“": "\u201a", "”": "\u201b", "…": "\u201e", " ": "\t\u3000\xa0\u2002\u2003\n\r"}


def assert_offsets(text: str, res) -> None:
    """Every clean character comes from the original character its offset points at."""
    assert len(res.offsets) == len(res.clean)
    prev = -1
    for i, ch in enumerate(res.clean):
        o = res.offsets[i]
        assert 0 <= o < len(text)
        assert o >= prev, "offsets go forward"
        prev = o
        orig = text[o]
        if ch == "\n":
            assert orig.isspace() or orig in "\n", (i, ch, orig)
        elif ch != orig:
            assert orig in SUBSTITUTES.get(ch, ""), (i, ch, orig)


# ---- boilerplate lines: general rules, both scripts


@pytest.mark.parametrize(
    "line,kind",
    [
        ("您當前的位置 : 東北網 \xa0>\xa0 東北網黑龍江 \xa0>\xa0 黑龍江綜合", "breadcrumb"),
        ("您当前的位置：首页 > 新闻中心", "breadcrumb"),
        ("当前位置：首页", "breadcrumb"),
        ("所在位置：首页 > 要闻", "breadcrumb"),
        ("关注我们", "widget"),
        ("订阅公众号", "widget"),
        ("首页 > 国内新闻", "breadcrumb"),
        ("新闻 » 社会 » 正文", "breadcrumb"),
        ("搜 索", "widget"),
        ("站内搜索", "widget"),
        ("關注東北網", "widget"),
        ("关注我们", "widget"),
        ("微博", "widget"),
        ("Qzone", "widget"),
        ("分享到： 微信 | 微博 | QQ空间", "widget"),
        ("【打印本页】【关闭窗口】", "widget"),
        ("上一篇：关于召开会议的通知", "widget"),
        ("[1]  [2]  [3]  下一页  尾页", "pagination"),
        ("上一頁 1 2 3 下一頁", "pagination"),
        ("共5页 第1页", "page-number"),
        ("責任編輯:王凌霞", "editor"),
        ("（责任编辑：张三）", "editor"),
        ("![]() |", "residue"),
        ("|||", "residue"),
        ("|", "residue"),
        ("| --- | :---: |", "residue"),
        ("-1-", "page-number"),
        ("- 12 -", "page-number"),
        ("—3—", "page-number"),
        ("第 3 页", "page-number"),
        ("第3页 共10页", "page-number"),
        ("Page 2 of 9", "page-number"),
    ],
)
def test_boilerplate_lines(line, kind):
    assert boilerplate_kind(line) == kind


@pytest.mark.parametrize(
    "line",
    [
        "微博已成为党员联系群众的新平台。",  # a sentence about Weibo is content
        "分享经验，共同提高",
        "大",  # a one-character line is not a font-size widget
        "12",  # a bare number is content outside PDFs
        "责任编辑部门要加强审核，确保信息准确。",
        "第三页的表格列出了各单位的名单。",
        "如果 a > b 且 b > c，那么 a > c。",
        "关注民生，服务群众，是我们工作的出发点和落脚点。",
        "党员大会 | 支部委员会",
        "群众申请→村委会审核→乡镇审批",
        "审核：由县委组织部负责，报县委常委会审定。",
        "上篇：理论基础",
        "位置：位于县城东南部，距县城41千米",
        "关注民生",
    ],
)
def test_content_lines_are_not_boilerplate(line):
    assert boilerplate_kind(line) is None


def test_bare_page_numbers_only_in_pdfs():
    assert boilerplate_kind("12", fmt="pdf") == "page-number"
    assert boilerplate_kind("3 / 10", fmt="pdf") == "page-number"
    assert boilerplate_kind("12", fmt="text") is None


# ---- date/source lines


def test_parse_dateline_traditional_and_simplified():
    assert parse_dateline("2010-11-26 16:40:32 來源:東北網  作者:") == {
        "date": "2010-11-26",
        "datetime": "2010-11-26T16:40:32",
        "source_name": "東北網",
    }
    assert parse_dateline("2012-07-15 10:29:18 来源:黑龙江日报  作者:常春晖")["author"] == "常春晖"
    assert parse_dateline("时间:2010-06-28 00:00:00 浏览次数:0")["date"] == "2010-06-28"
    assert parse_dateline("发布时间：2021年3月4日  来源：人民网")["source_name"] == "人民网"
    # a body sentence that mentions a date is not a date line
    assert parse_dateline("2010年6月28日，全局召开动员大会，部署创先争优活动，要求各单位认真落实。") is None
    assert parse_date("2010年13月1日") == ""


# ---- in-line repairs


def test_repair_line_maps_every_character():
    text = "  设臵‚两保三带‛\u200b 机制　„ „ „„ 好  "
    from array import array

    s, offs = repair_line(text.strip(), array("i", range(2, 2 + len(text.strip()))))
    assert s == "设置“两保三带” 机制 ……好"
    assert len(offs) == len(s)
    assert text[offs[s.index("置")]] == "臵"
    assert text[offs[s.index("“")]] == "\u201a"
    assert text[offs[s.index("…")]] == "\u201e"


def test_page_number_glued_to_a_line_is_removed_and_sentence_rejoined():
    text = "一、健全制度\n为了协助基层抓好管理，大队600名职工都可以直接找书记面谈或电话反映问题,并公开书记-1-\n办公电话。每周五召开例会。"
    res = clean_text(text)
    assert res.clean == "一、健全制度\n为了协助基层抓好管理，大队600名职工都可以直接找书记面谈或电话反映问题,并公开书记办公电话。每周五召开例会。"
    assert_offsets(text, res)


# ---- re-joining broken lines, and not joining headings


def test_ocr_broken_lines_are_rejoined():
    text = (
        "尾声:\n"
        "每当晨曦降临南昌高新开发区这方投资热土时,高新区的每位党\n"
        "员干部和群众仍和十年来的每一天一样,在全区经济建设热潮中勇于做好先锋模范带头作用。他们仍然钟情于这座\n"
        "极具现代化气息的新城,这片充满生机和活力的红土地。\n"
        "画面:区内企业开展党的活动以及企业生产等方面的画\n"
        "面\n"
        "解说:在协调维权方面,企业党组织都能认真引导企业主与员工\n"
        "建立新型的关系,积极维护企业与员工双方的合法权益。\n"
    )
    res = clean_text(text)
    lines = res.clean.split("\n")
    assert lines == [
        "尾声:",
        "每当晨曦降临南昌高新开发区这方投资热土时,高新区的每位党员干部和群众仍和十年来的每一天一样,"
        "在全区经济建设热潮中勇于做好先锋模范带头作用。他们仍然钟情于这座极具现代化气息的新城,这片充满生机和活力的红土地。",
        "画面:区内企业开展党的活动以及企业生产等方面的画面",
        "解说:在协调维权方面,企业党组织都能认真引导企业主与员工建立新型的关系,积极维护企业与员工双方的合法权益。",
    ]
    assert_offsets(text, res)


def test_headings_are_not_glued_to_text():
    text = (
        "第一篇:党建示范点解说词\n"
        "党建示范点解说词\n"
        "作为纪录片的解说词,它把需要让人理解的方面使用语言的形式表现出来。\n"
        "走廊宣传版面\n"
        "我们利用走廊建成了党建宣传长廊,不断激励全局党员干部深入学习。\n"
        "一、察民情 解民难 —— 显爱民之心\n"
        "月 26 日,南京迎来了入冬以来的第一个寒潮天气。\n"
        "国库中心担负着全区的预算执行、集中支付工作,牢固树立“支\n"
        "党建示范点解说词——党旗鲜艳火炬红\n"
        "解说:正当全国上下认真学习贯彻落实党的十七大精神之际,南昌市迎来了新一轮经济建设热潮。\n"
    )
    res = clean_text(text)
    assert res.clean.split("\n") == [ln for ln in text.split("\n") if ln]


def test_splits_word():
    assert splits_word("区内企业开展党的活动以及企业生产等方面的画", "面")
    assert splits_word("高新区的每位党", "员干部和群众")
    assert not splits_word("走廊宣传版面", "我们利用走廊建成了")


def test_wrapped_pdf_like_text_is_rejoined_and_titles_kept():
    # lines wrapped at ~20 characters, as a PDF text layer gives them
    text = (
        "关于加强基层党建工作的报告\n"
        "一、基本情况\n"
        "全县共有党员三万人，其中农村党员一万五千\n"
        "人，城镇党员一万五千人。基层党组织建设扎\n"
        "实推进，组织覆盖面不断扩大。\n"
        "二、主要做法\n"
        "坚持问题导向，狠抓工作落实，建立健全各项\n"
        "制度，形成了一级抓一级、层层抓落实的格局\n"
        "和长效机制。\n"
    )
    assert wrap_width([len(x) for x in text.split("\n") if x]) == 20
    res = clean_text(text, fmt="pdf")
    assert res.title == "关于加强基层党建工作的报告"
    assert res.clean.split("\n") == [
        "一、基本情况",
        "全县共有党员三万人，其中农村党员一万五千人，城镇党员一万五千人。基层党组织建设扎实推进，组织覆盖面不断扩大。",
        "二、主要做法",
        "坚持问题导向，狠抓工作落实，建立健全各项制度，形成了一级抓一级、层层抓落实的格局和长效机制。",
    ]
    assert_offsets(text, res)


def test_html_and_docx_paragraphs_are_not_rejoined():
    text = "正文第一段讲了很多内容，涉及方方面面的工作，总结了经验也指出了不足，但是这一行到这里没有句号\n这是第二段。"
    assert clean_text(text, fmt="docx").clean == text
    assert clean_text(text, fmt="text").clean == text.replace("\n", "")


# ---- the head of a web page


def test_head_title_dateline_and_boilerplate():
    text = (
        "您当前的位置 : 东北网  >  东北网黑龙江  >  政务\n"
        "搜 索\n"
        "我省深入开展\"基层组织建设年\"活动巡礼 服务龙江新跨越\n"
        "2012-07-15 10:29:18 来源:黑龙江日报  作者:常春晖\n"
        "关注东北网\n微博\nQzone\n\n"
        "  黑龙江日报7月15日讯 高楼万丈拔地而起,是因有基础的承托。\n\n"
        "[1]  [2]  [3]  下一页  尾页\n\n"
        "责任编辑:宋巍\n"
    )
    res = clean_text(text)
    assert res.title == "我省深入开展\"基层组织建设年\"活动巡礼 服务龙江新跨越"
    assert res.metadata == {
        "date": "2012-07-15",
        "datetime": "2012-07-15T10:29:18",
        "source_name": "黑龙江日报",
        "author": "常春晖",
        "editor": "宋巍",
    }
    assert res.clean == "黑龙江日报7月15日讯 高楼万丈拔地而起,是因有基础的承托。"
    assert res.title_span == (text.index("我省"), text.index("新跨越") + 3)
    assert_offsets(text, res)


def test_first_line_title_with_subtitle():
    text = "![]() |\n|\n學先進趕先進作貢獻當表率\n——本市創先爭優活動有力有序有效開展\n天津北方網訊:全市創先爭優活動部署以來,各級黨組織緊緊圍繞活動主題。\n"
    res = clean_text(text)
    assert res.title == "學先進趕先進作貢獻當表率 ——本市創先爭優活動有力有序有效開展"
    assert res.metadata["subtitle"] == "本市創先爭優活動有力有序有效開展"
    assert res.clean.startswith("天津北方網訊")


def test_article_heading_names_the_title_but_stays_in_the_body():
    text = "第一篇:党建示范点解说词\n党建示范点解说词\n作为纪录片的解说词,它把需要让人理解的方面表现出来。\n"
    res = clean_text(text)
    assert res.title == "党建示范点解说词"
    assert res.clean.startswith("第一篇:党建示范点解说词\n")


def test_title_hint_line_removed():
    res = clean_text("新闻标题\n第一段内容。", fmt="html", title_hint="新闻标题")
    assert res.title == "新闻标题" and res.clean == "第一段内容。"


def test_bullets_glued_by_ocr_get_their_own_lines():
    text = "建立村务管理新机制，实现党建、村民自治有机统一 ●巴洲等12个村的议案，全部经村代会讨论决策\n"
    res = clean_text(text)
    assert res.clean == "建立村务管理新机制，实现党建、村民自治有机统一\n●巴洲等12个村的议案，全部经村代会讨论决策"
    assert_offsets(text, res)


def test_seeds_offsets_and_no_boilerplate(seed_paths):
    for p in seed_paths:
        text = p.read_text(encoding="utf-8")
        res = clean_text(text)
        assert_offsets(text, res)
        for token in ("您當前的位置", "您当前的位置", "搜 索", "關注東北網", "关注东北网", "Qzone", "責任編輯", "责任编辑", "![]()", "|||", "下一页", "尾页", "\u201a", "设臵", "-1-"):
            assert token not in res.clean, (p.name, token)


@pytest.fixture
def seed_paths():
    from pathlib import Path

    paths = sorted((Path(__file__).resolve().parent.parent / "seeds").glob("*.txt"))
    assert len(paths) == 5
    return paths


def test_news_page_from_another_site():
    text = (
        "人民网 >> 时政 >> 正文\n"
        "中央全面深化改革委员会召开会议\n"
        "2021年03月04日08:25 | 来源：人民网－人民日报\n"
        "小字号\n"
        "分享到：\n"
        "新华社北京3月3日电 会议审议通过了有关文件。\n"
        "　　会议指出，推进改革要抓住重点，\n"
        "突出问题导向。\n"
        "(责编：王静、李四)\n"
        "相关新闻\n"
        "改革委员会第十八次会议召开\n"
        "点击排行\n"
        "打印 | 纠错 | 推荐 | 关闭\n"
    )
    res = clean_text(text)
    assert res.title == "中央全面深化改革委员会召开会议"
    assert (res.metadata["date"], res.metadata["source_name"], res.metadata["editor"]) == ("2021-03-04", "人民网－人民日报", "王静、李四")
    assert res.clean == "新华社北京3月3日电 会议审议通过了有关文件。\n会议指出，推进改革要抓住重点，突出问题导向。"


def test_site_blurb_sentence_removed():
    text = "作为纪录片的解说词,它把需要让人理解的方面表现出来。本站精心为大家整理了党建示范点解说词,希望对你有帮助。尊敬的各位领导:\n"
    res = clean_text(text)
    assert res.clean == "作为纪录片的解说词,它把需要让人理解的方面表现出来。尊敬的各位领导:"
    assert_offsets(text, res)
    # a sentence about a web site that is not a blurb stays
    assert "本站点" in clean_text("全县已建成党建网站100个，本站点访问量居全市第一。").clean


def test_editor_line_at_the_top_keeps_the_headings():
    text = (
        "关于加强基层组织建设的调查\n"
        "责任编辑：张三\n"
        "一、基本情况\n"
        "全县共有党员三万人。\n"
        "二、存在问题\n"
        "一些支部活动不经常。\n"
        "三、几点建议\n"
        "要加强培训。\n"
    )
    res = clean_text(text)
    assert res.metadata["editor"] == "张三"
    assert "二、存在问题" in res.clean and "三、几点建议" in res.clean


@pytest.mark.parametrize(
    "line",
    [
        "2010年6月28日，局党委召开会议，时间安排如下",
        "来源：据统计，作者认为情况良好",
        "2009年，财政拨付302万元为全县村干部兑现工资",
    ],
)
def test_sentences_with_dates_are_not_date_lines(line):
    assert parse_dateline(line) is None
