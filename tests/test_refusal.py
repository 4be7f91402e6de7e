"""rag.answer.refusal's near-miss rules on hand-made cases (the figure exists, in another unit)."""

from __future__ import annotations

import pytest

from rag.answer.refusal import asked_unit, describe_unit_mismatch, unit_mismatch


@pytest.mark.parametrize("question, unit", [
    ("苏里格项目部有多少名职工？", "person"),
    ("該村有幾戶居民？", "户"),
    ("全长多少公里？", "km"),
    ("于行阳有多少年党龄？", "years"),
    ("宝泰隆公司是哪一年组建的？", None),
    ("召開了幾個層面的座談會？", None),  # 个 is the generic classifier: "5個" answers it
    ("2002年有多少個村的書記空缺？", None),
    ("天津的主题是什么？", None),
])
def test_asked_unit(question, unit):
    assert asked_unit(question) == unit


def test_the_neighbouring_count_in_another_unit_is_a_near_miss():
    # 19 teams are not a number of employees; 32 人 answers 多少名 (both count people)
    assert unit_mismatch("苏里格项目部有多少名职工？", ["苏里格项目部有19支作业队"]) == ("person", "19支")
    assert unit_mismatch("该局有多少名党员？", ["该局现有党员32人"]) is None
    # a money figure for a head count; the duration "八年来" is not the count the answer gives
    assert unit_mismatch("八年来有多少名离任村干部领取了奖励？", ["八年来有197.59万元发给离任村干部"])[0] == "person"
    # dates and years around the count never count as the answer's unit
    assert unit_mismatch("2010年该村有多少户？", ["2010年6月该村有120户"]) is None
    # the generic classifier asks for no particular unit (it used to be read past: "个村" → 村)
    assert unit_mismatch("2002年昔阳县有多少个村的党支部书记空缺？", ["全县有12个村党支部书记空缺"]) is None
    # no count at all: other rules decide
    assert unit_mismatch("该村有多少名党员？", ["该村党员很多"]) is None
    assert "“19支”" in describe_unit_mismatch("19支", "zh-Hant") and "支" in describe_unit_mismatch("19支", "en")
