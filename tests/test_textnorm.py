from rag.text import norm as t


def test_script_conversion_roundtrip():
    assert t.t2s("東北網黑龍江") == "东北网黑龙江"
    assert t.s2t("东北网黑龙江") == "東北網黑龍江"


def test_normalize_folds_script_width_and_case():
    assert t.normalize("東北網 ＡＩ１２") == "东北网 ai12"
    # the same question in both scripts has one matching form
    assert t.normalize("創先爭優活動的主題是什麼") == t.normalize("创先争优活动的主题是什么")


def test_detect_script_and_language():
    assert t.detect_script("學習型黨組織建設") == "traditional"
    assert t.detect_script("学习型党组织建设") == "simplified"
    assert t.detect_script("What is the theme?") == "other"
    assert t.question_language("這是什麼？") == "zh-Hant"
    assert t.question_language("这是什么？") == "zh-Hans"
    assert t.question_language("What is it?") == "en"
    # text valid in both scripts counts as simplified (e.g. no script-specific characters)
    assert t.detect_script("中国") == "simplified"


def test_to_script():
    assert t.to_script("党组织", "traditional") == "黨組織"
    assert t.to_script("黨組織", "simplified") == "党组织"
    assert t.to_script("abc", "other") == "abc"


def test_normalize_answer_drops_punctuation_and_space():
    # 「五個好」， 即：A-1! → strip P/S/Z → 五個好即A1 → t2s + lower → 五个好即a1
    assert t.normalize_answer("「五個好」， 即：A-1!") == "五个好即a1"
