"""Asked attributes: which kind of value a question asks for, read from the question's shape, and
whether a sentence holds such a value next to the asked noun. rag.answer.extractive uses it to quote the
sentence that answers an attribute question ("宝泰隆公司有多少名员工？" → the sentence with
"員工3000名", not the company's founding sentence) and to tell the answer stage whether it does.

Question shape → attribute (all matching is on `rag.text.norm.normalize`: simplified, half-width):
- 多少/几 + counter/unit + noun ("多少名员工", "几所学校", "多少平方米"), or noun + 多少/几
  ("员工有多少人", "面积是多少"): a number with that counter or unit, next to the noun (the person
  counters 名/人/位 are one class; with no counter named, any counter or a bare number counts);
- 多大/多长/多高/多重/多远/几岁: a number with an area/length/height/weight/age unit (the noun
  decides "多大": 面积 → area, 年龄 → age, 投资 → money); 百分之几/比例 → a percentage;
- 哪一年/何年 → a year; 哪天/何时/什么时候/几月几日 → a date; 多久/多长时间/几年 → a duration;
- noun + 是谁/叫什么, 谁 + 是/担任 + noun, 由谁 + verb, 哪位 + noun → a person's name;
- 在哪里/哪里/何地/位于哪/哪个城市 → a place (在/于 X + verb, 位于/设在/地点 X, X ending in 市/县/楼…).
The asked noun is the head word beside the question word (jieba; Chinese nouns and titles are
head-final, so "党委书记" also matches "书记"), widened by a few synonym classes (员工 ≈ 职工 ≈
工作人员, 成立 ≈ 创建 ≈ 始建, 召开 ≈ 举行 …). "Next to" means within a few characters in either
order and not across a clause mark (，。；！？): "员工3000名", "3000名员工", "有员工3000余人",
"職工591人" all hold a person count next to 员工.

`match_level(attr, sentence)`: 2 = a value of the asked type next to the asked noun (or anywhere
when the question names no noun), 1 = a value of the type elsewhere in the sentence, 0 = none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rag.text.norm import cjk_count, normalize


@dataclass(frozen=True)
class Attribute:
    kind: str  # count area length height weight money age duration percent number year date person place
    nouns: tuple[str, ...] = ()  # normalised asked noun/verb and its synonyms; () = anywhere in the sentence
    counter: str = ""  # the counter or unit the question names ("名", "平方米"); "" if none


_COUNTERS = "个名人位家所项户座条次件台辆种套栋幢处支批场篇部本张株头只匹艘架间块届期队类份起例首棵口枚颗道节"
_PERSON_COUNTERS = ("人次", "名", "人", "位")
_UNITS = {
    "area": ("平方公里", "平方千米", "平方英尺", "平方米", "平米", "平方", "公顷", "亩", "km2", "km²", "m2", "m²"),
    "length": ("公里", "千米", "厘米", "毫米", "米", "里", "km", "cm", "mm", "m"),
    "height": ("公里", "千米", "厘米", "米", "层", "m"),
    "weight": ("公斤", "千克", "吨", "克", "斤", "kg"),
    "money": ("美元", "港元", "欧元", "日元", "英镑", "块钱", "元", "钱"),
    "age": ("周岁", "岁"),
    "duration": ("个月", "小时", "分钟", "星期", "年", "月", "天", "日", "周", "秒"),
    "percent": ("个百分点", "%", "成"),
}
# a unit named in the question decides the kind ("多少亩" → area); longest first so 平方米 beats 米
_UNIT_KIND = sorted(
    ((u, k) for k in ("area", "money", "weight", "age", "duration", "length") for u in _UNITS[k]), key=lambda t: -len(t[0])
)
# nouns that say which measure "多少/多大/是多少" asks for
_NOUN_KIND = [
    (re.compile(r"面积|占地"), "area"),
    (re.compile(r"投资|资金|经费|金额|费用|价格|收入|产值|利润|销售额|营业额|营收|成本|工资|税收|预算|拨款|奖金|造价|资产"), "money"),
    (re.compile(r"年龄|年纪|岁数"), "age"),
    (re.compile(r"长度|全长|距离|里程|路程"), "length"),
    (re.compile(r"高度|海拔|身高"), "height"),
    (re.compile(r"重量|体重|产量"), "weight"),
    (re.compile(r"比例|比率|占比|比重|百分比|[^效]率$"), "percent"),
]
# words that name "how many" rather than what is counted: the counted noun is the word before
_COUNT_WORDS = ("人数", "人口数", "数量", "总数", "数目", "总量", "规模")
_SYNSETS = [
    frozenset("员工 职工 雇员 职员 工作人员 从业人员 干部职工 在职员工 在岗职工 教职工 教职员工 人员".split()),
    frozenset("学生 在校生 在校学生 学员".split()),
    frozenset("人口 居民 常住人口 户籍人口".split()),
    frozenset("成立 创建 创立 建立 组建 设立 创办 建成 始建 兴建 成立于 建于".split()),
    frozenset("召开 举行 举办 开幕".split()),
    frozenset("面积 占地 占地面积 总面积 建筑面积".split()),
    frozenset("投资 总投资 投资额".split()),
    frozenset("产量 年产量 年产 产能".split()),
]
_PERSON_TITLE = re.compile(r"(长|记|任|理|师|席|裁|监|官|员|委|事|人|者|代表|领导|老板|作者|主持)$")

# question shapes, in priority order: (kind, pattern); "amount"/"measure"/"name" are resolved later
_SHAPES = [
    ("person", r"是谁|由谁|为谁|谁(?:是|担任|出任|任)?|哪一?位|什么人|何人"),
    ("name", r"叫什么名字|叫什么|名字是什么|姓名是什么|姓什么|什么名字"),
    ("place", r"在哪里|在哪儿|在哪(?!一?[年天月日])|在何地|在何处|在什么地方|位于哪里?|设在哪里?|哪里|哪儿|何地|何处|什么地方|什么地点"
              r"|哪个(?:地方|城市|省份?|国家|县|市|区)|哪座城市"),
    ("year", r"哪一年|哪年|何年|哪个年份|什么年份|哪一年份"),
    ("duration", r"多长时间|多久|多少年(?!轻)|(?<![近这前哪])几年|多少天|(?<![近这前哪])几天|多少个月|几个月|多少小时|几个小时"),
    ("date", r"哪一天|哪天|哪一日|何日|何时|什么时候|什么时间|几月几[日号]|几月份?|几号|哪个月|几点钟?|(?:时间|日期)(?=(?:是|为)?(?:什么|何时|哪|多少)?[?？]?$)"),
    ("percent", r"百分之[几多少]+|多少%|比例|占比|百分比|比重"),
    ("measure", r"多大|多长|多高|多重|多远|多深|多宽|多厚|几岁|多少岁"),
    ("amount", r"多少|(?<![哪几])几(?![乎何])"),
]
_SHAPE_RE = [(k, re.compile(p)) for k, p in _SHAPES]
_MEASURE_KIND = {"多长": "length", "多高": "height", "多重": "weight", "多远": "length", "多深": "length",
                 "多宽": "length", "多厚": "length", "几岁": "age", "多少岁": "age"}
_TRAIL = re.compile(r"(?:总共有|一共有|大约有|共有|现有|约有|还有|总计|合计|达到|达|共|有|是|为|约|大约|的|了|在|于|由|被|总共|一共)+$")
_LEAD = re.compile(r"(?:该|这|那|本|此|其|各|每)(?:校|局|市|县|区|省|镇|村|厂|院|所|公司|单位|部门)?")
# nouns that start with a counter character ("多少人口" counts no 人; "几个股室" does count 个)
_NOT_COUNTER = tuple(
    "人口 人员 人才 人民 人数 人们 人家 个人 个体 家庭 家长 家属 家乡 家人 位置 名单 名称 名字 名额 名次 所有 所得 条件 条款"
    " 次数 种类 部门 户籍 户口 项目 件事 台阶 队伍 类型 份额 口号 道路 节日 期限 期间 场所 场地 批次 本领".split()
)
_PRONOUNS = frozenset("他 她 它 他们 她们 它们 其 该 这 那 此 我 你 我们 你们 大家".split())
_COPULAS = frozenset("是 为 有 约 大约 达 共 在 于 的 了 多少 几 什么 吗 呢 啊 呀".split())


def asked_attribute(question: str) -> Attribute | None:
    """The attribute `question` asks for, or None (not an attribute question, or not Chinese).

    >>> asked_attribute("恆昌公司有多少名員工？")  # doctest: +ELLIPSIS
    Attribute(kind='count', nouns=('员工', ...), counter='名')
    >>> asked_attribute("学校占地面积多大？").kind, asked_attribute("会议在哪里召开？").nouns[:2]
    ('area', ('召开', '举办'))
    >>> asked_attribute("公司的党委书记是谁？").nouns[:2], asked_attribute("安达市委实施了哪些措施？")
    (('党委书记', '书记'), None)
    """
    qn = normalize(question)
    if not cjk_count(qn):
        return None
    for kind, rx in _SHAPE_RE:
        m = rx.search(qn)
        if m:
            break
    else:
        return None
    word, pre, post = m.group(), qn[: m.start()], re.split(r"[,，;；?？!！。]", qn[m.end() :])[0]
    counter = ""
    if kind in ("amount", "measure"):
        counter, post = _split_counter(post) if kind == "amount" else ("", post)
    after, before = _head_after(post), _head_before(pre)
    # the verb or noun after the question word is what the value sits next to ("哪一年成立",
    # "多少名员工", "由谁主持", "多大面积"); "X是谁 / X叫什么", or nothing after: the noun before
    head = (before or after) if word in ("是谁", "为谁") or kind == "name" else (after or before)
    if head in _PRONOUNS:
        head = ""  # "他几岁了": the value's noun is whoever the passage names
    if head.endswith(_COUNT_WORDS):
        # "员工人数" / "职工总数": counted is 员工 (persons when the word is 人数)
        if head.endswith(("人数", "人口数")):
            counter = counter or "人"
        head = head[: -len(next(w for w in _COUNT_WORDS if head.endswith(w)))]
    if kind == "name":
        if not head or not _PERSON_TITLE.search(head):
            return None  # "这家公司叫什么名字" asks for an organisation's name: not handled
        kind = "person"
    if kind == "measure":
        kind = _MEASURE_KIND.get(word) or _noun_kind(head) or "number"
    elif kind == "amount":
        kind = next((k for u, k in _UNIT_KIND if u == counter), None) or _noun_kind(head) or "count"
    return Attribute(kind, _expand(head), counter)


def _noun_kind(noun: str) -> str | None:
    return next((k for rx, k in _NOUN_KIND if noun and rx.search(noun)), None)


def _split_counter(post: str) -> tuple[str, str]:
    """("名员工") → ("名", "员工"): the counter or unit right after 多少/几, if any. A counter
    character that starts a common noun is not a counter: "多少人口", "多少家庭"."""
    body = post.lstrip("十百千万亿")
    for u, _ in _UNIT_KIND:
        if body.startswith(u):
            return u, body[len(u) :]
    if body[:1] and body[0] in _COUNTERS and not body.startswith(_NOT_COUNTER):
        n = 2 if body.startswith("人次") else 1
        return body[:n], body[n:]
    return "", post


def _head_after(post: str) -> str:
    """The word a question continues with: its verb ("成立了…" → "成立") or, for a noun phrase,
    the phrase's last noun ("在职员工参加…" → "员工"; nouns are head-final)."""
    import jieba.posseg as pseg

    words = [(w, f) for w, f in pseg.lcut(post.strip()) if w.strip()]
    # leading pronouns, copulas, adverbs… ("是该校的校长" → "校长", "在职员工" stays)
    while words and (words[0][0] in _COPULAS or words[0][0] in _PRONOUNS or _LEAD.fullmatch(words[0][0])
                     or words[0][1][:1] in ("r", "u", "p", "d", "c", "m", "q", "y", "x")):
        words.pop(0)
    if not words:
        return ""
    if words[0][1].startswith("v") and words[0][1] != "vn":
        return words[0][0]
    np: list[str] = []
    for w, f in words:
        if w == "的":  # "该校的校长": the head follows 的
            continue
        if not (f[:1] in ("n", "b", "j", "l", "a") or f == "vn"):
            break
        np.append(w)
    if not np:
        return words[0][0]
    head = np[-1]
    return np[-2] + head if len(head) == 1 and len(np) > 1 else head


def _head_before(pre: str) -> str:
    """The last word before the question word, after auxiliaries, time words and pronouns
    ("…公司成立于" → "成立", "党委书记" → "党委书记", "他今年" → "")."""
    import jieba.posseg as pseg

    pre = _TRAIL.sub("", re.split(r"[,，;；:：、]", pre)[-1].strip())
    words = [(w, f) for w, f in pseg.lcut(pre) if w.strip()]
    while words and (words[-1][1][:1] in ("t", "d", "r", "u", "x") or words[-1][0] in _PRONOUNS):
        words.pop()
    if not words:
        return ""
    head = words[-1][0]
    if (len(head) == 1 or head in _COUNT_WORDS) and len(words) > 1:
        head = words[-2][0] + head  # "员工/人数" → "员工人数", "地质/局" → "地质局"
    return head


def _expand(head: str) -> tuple[str, ...]:
    """The head word, its last two characters (党委书记 → 书记, 在职员工 → 员工) and their synonyms."""
    if not head:
        return ()
    out = [head]
    if len(head) > 2:
        out.append(head[-2:])
    for s in list(out):
        for syn in _SYNSETS:
            if s in syn:
                out.extend(sorted(syn - set(out), key=lambda w: (-len(w), w)))
    return tuple(dict.fromkeys(out))


# ---------------------------------------------------------------- values in a sentence

_NUM = r"(?:\d+(?:[.,]\d+)*|[数几]?[零〇○一二两三四五六七八九十百千万亿]+)"
_APPROX = r"(?:余|多|来|几)?"
_ROUND = tuple("近上数逾过成几")  # before a bare 百/千/万: a round number
_CLAUSE = re.compile(r"[，。；！？,;!?\n]")
_YEAR = r"(?:公元前?\d{1,4}|\d{4}|[〇○零一二三四五六七八九]{4})\s*年(?!代)|\d{4}[-/.]\d{1,2}"
_DATE = (
    rf"{_YEAR}|\d{{1,2}}\s*月(?:\s*\d{{1,2}}\s*[日号])?|[一二三四五六七八九十]{{1,2}}月(?:[一二三四五六七八九十]{{1,3}}[日号])?"
    r"|\d{1,2}\s*日|\d{1,2}\s*[:：]\s*\d{2}|\d{1,2}\s*[点时](?:\s*\d{1,2}\s*分|半)?"  # clock times, for 几点
    r"|(?:上|下|本)?(?:周|星期|礼拜)[一二三四五六日天]|今年|去年|前年|明年|昨天|今天|明天|当天|当日|次日"
)
_PERCENT = r"\d+(?:\.\d+)?\s*(?:%|个百分点)|百分之[零〇一二两三四五六七八九十百点]+|[一二三四五六七八九]成"
_PLACE_SUFFIX = (r"(?:市|省|县|区|镇|乡|村|州|街道|路|街|号|楼|厅|室|馆|宾馆|酒店|饭店|大厦|礼堂|会堂|中心|广场|公园"
                 r"|学校|大学|学院|基地|园区|机场|车站|国|岛)")
_EVENT_VERBS = "召开|举行|举办|开幕|闭幕|开展|进行|成立|落成|揭牌|签约|签署|开工|竣工|启动|隆重|胜利|顺利|召集|主办"
_PLACE_MARK = re.compile(r"(?:位于|地处|坐落[在于]|设在|设于|落户|地点[为是在:：]?|地址[为是:：]?)\s*[^\s，。；！？,;!?]{2,20}")
_IN_PLACE = re.compile(rf"(?:在|于|赴|到|来自)[^\s，。；！？,;!?在于]{{1,15}}?{_PLACE_SUFFIX}")
_ORG_WORDS = frozenset(
    "公司 集团 集团公司 有限公司 股份 有限 市 县 省 区 镇 乡 村 局 厂 矿 煤矿 银行 医院 学校 大学 学院 中学 小学 中心 协会 商会"
    " 网 报 报社 电视台 地区 路 街".split()
)
_WINDOW = {"year": 8, "date": 8, "place": 8, "person": 6}  # characters between value and noun; others 6
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁沈姚卢姜崔钟谭陆汪范金石"
    "廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔汤常温康施牛樊葛邢齐易乔伍庞颜倪庄聂章鲁"
    "岳翟殷詹申欧耿兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕季裴霍涂苗谷盛曲翁冉骆蓝游辛靳管柴蒙鲍华喻祁蒲房滕屈饶牟艾尤穆"
    "卓古吉缪简项芦麦褚娄窦戚岑景宫费卜冷晏席卫米柏宗瞿桂佟臧闵苟邬边卞姬栾隋刁沙荣巫寇桑郎甄丛仲虞敖巩佘池查麻苑迟邝"
)


@lru_cache(maxsize=64)
def _value_re(kind: str, counter: str) -> re.Pattern[str]:
    if kind == "year":
        return re.compile(_YEAR)
    if kind == "date":
        return re.compile(_DATE)
    if kind == "percent":
        return re.compile(_PERCENT)
    if kind == "count":
        if counter in _PERSON_COUNTERS:
            units = "|".join(_PERSON_COUNTERS)
        elif counter:
            units = "|".join(dict.fromkeys((re.escape(counter), "个")))
        else:
            units = "|".join([*_PERSON_COUNTERS, *_COUNTERS])
        # a bare number closing a clause also counts ("员工总数为3000。")
        return re.compile(
            rf"(?P<n>{_NUM}){_APPROX}[十百千万亿]*(?:{units})"
            r"|(?P<b>\d+(?:[.,]\d+)*\s*[万亿]?)(?=\s*(?:余|多)?(?:左右)?(?:[，。；,;！!？?、)）]|$))"
        )
    if kind in _UNITS:
        units = "|".join(re.escape(u) for u in _UNITS[kind])
        return re.compile(rf"(?P<n>{_NUM}){_APPROX}[十百千万亿]*(?:{units})")
    # "number": any number with or without a unit
    return re.compile(rf"(?P<n>{_NUM}){_APPROX}")


def _value_spans(attr: Attribute, sn: str) -> list[tuple[int, int]]:
    if attr.kind == "person":
        return _person_spans(sn)
    if attr.kind == "place":
        return _place_spans(attr, sn)
    spans = []
    for m in _value_re(attr.kind, attr.counter).finditer(sn):
        num = m.groupdict().get("n") or m.groupdict().get("b") or m.group()
        before = sn[m.start() - 1 : m.start()]
        if num == "一" or (num and set(num) <= set("百千万亿") and before not in _ROUND):
            continue  # "一家企业" is an article, "万人空巷" no number ("近百位", "上千人" are)
        if attr.kind == "duration" and re.fullmatch(r"\d{4}", num) and m.group().endswith("年"):
            continue  # "2005年" is a year, not a duration
        spans.append(m.span())
    return spans


def _person_spans(sn: str) -> list[tuple[int, int]]:
    """Person names: jieba's person tags (nr*) of 2–4 characters, a one-character surname tagged
    nr followed by a short word ("赵/建国"), or a run of 2–3 one-character words starting with a
    common surname (a name jieba does not know). A "name" followed by 公司/市/局… names an
    organisation or a place ("宝泰隆公司"), not a person."""
    import jieba.posseg as pseg

    toks = [(w, f) for w, f in pseg.lcut(sn)]
    starts = [0]
    for w, _ in toks:
        starts.append(starts[-1] + len(w))
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(toks):
        w, f = toks[i]
        j = i + 1
        if len(w) == 1 and w in _SURNAMES:
            if f.startswith("nr") and j < len(toks) and len(toks[j][0]) <= 2 and toks[j][1][:1] not in "xvpucdm":
                j += 1  # 赵/建国
            else:
                while j < len(toks) and j - i < 3 and len(toks[j][0]) == 1 and toks[j][1] != "x":
                    j += 1  # 焦/云/峰
                if j - i < 2:
                    j = i  # a lone surname character is no name
        elif not (f.startswith("nr") and 2 <= len(w) <= 4):
            j = i
        if j > i and not (j < len(toks) and toks[j][0] in _ORG_WORDS):
            spans.append((starts[i], starts[j]))
        i = max(j, i + 1)
    return spans


def _place_spans(attr: Attribute, sn: str) -> list[tuple[int, int]]:
    verbs = "|".join([*(re.escape(n) for n in attr.nouns), _EVENT_VERBS])
    at_event = re.compile(rf"(?:在|于)[^\s，。；！？,;!?在于]{{2,20}}?(?=(?:{verbs}))")
    spans = [m.span() for rx in (_PLACE_MARK, _IN_PLACE, at_event) for m in rx.finditer(sn)]
    # "于6月25日召开" / "于2005年成立" name a time, not a place ("位于县城西2公里" is one)
    return [(a, b) for a, b in spans if not re.search(_DATE, sn[a:b])]


def _noun_spans(attr: Attribute, sn: str) -> list[tuple[int, int]]:
    return [(m.start(), m.start() + len(n)) for n in attr.nouns for m in re.finditer(re.escape(n), sn)]


def _adjacent(v: tuple[int, int], n: tuple[int, int], sn: str, window: int) -> bool:
    if v[0] < n[1] and n[0] < v[1]:
        return True
    gap = sn[n[1] : v[0]] if n[1] <= v[0] else sn[v[1] : n[0]]
    return len(gap) <= window and not _CLAUSE.search(gap)


def match_level(attr: Attribute, sentence: str) -> int:
    """2: `sentence` holds a value of `attr`'s type next to the asked noun (or anywhere when the
    question names none); 1: such a value elsewhere in the sentence; 0: none.

    >>> a = asked_attribute("宝泰隆公司有多少名员工？")
    >>> [match_level(a, s) for s in ("公司現有員工3000餘名。", "宝泰隆公司成立于2003年。", "其中党员500人，员工众多。")]
    [2, 0, 1]
    """
    sn = normalize(sentence)
    values = _value_spans(attr, sn)
    if not values:
        return 0
    if not attr.nouns:
        return 2
    w = _WINDOW.get(attr.kind, 6)
    return 2 if any(_adjacent(v, n, sn, w) for v in values for n in _noun_spans(attr, sn)) else 1


def has_asked_value(question: str, sentence: str) -> bool | None:
    """Does `sentence` hold the value `question` asks for, next to the asked noun? None when the
    question asks for no recognised attribute (then there is nothing to check).

    >>> has_asked_value("宝泰隆公司有多少名员工？", "现有職工591人。"), has_asked_value("明天天气怎么样？", "多云。")
    (True, None)
    """
    attr = asked_attribute(question)
    return None if attr is None else match_level(attr, sentence) == 2


# the question asks for items ("哪几项", "包括哪些", "哪三步", "what are the")
# (a quote may stand between 哪 and the count: 哪“三个方面宣传”)
_ASKS_ITEMS = re.compile(r"哪些|哪几|哪\W{0,2}[一二三四五六七八九十两]|包括什么|分别是|分别为|what are|which are", re.I)


def asks_items(question: str) -> bool:
    """Does the question ask for a list of items?

    >>> asks_items("『三带』是哪三带？"), asks_items("会议哪天召开？")
    (True, False)
    """
    return bool(_ASKS_ITEMS.search(normalize(question)))
