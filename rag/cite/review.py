"""Review a generated answer statement by statement: what is shown, what it cites, what is checked.

The model's raw text is split into statements (sentence or clause ends, 。！？；, with a marker
group that follows the punctuation kept with its statement). Each statement is checked with
rag.cite.claims.check_claim against the body of every passage it cites (not its headings, unless one
holds a number or date: a heading names a topic, it rarely states a fact) and gets a `Claim`:

- verified: at least one cited passage backs it; only those markers are shown (canonical 【n】);
- a statement citing nothing, or citing a passage that does not back it, is checked against the
  other passages and re-attributed to one that backs it (citation flagged `auto`) — small models
  forget markers and miscount passages;
- unverified: no passage backs it; shown without markers and flagged, never with a ✓;
- truncated or empty statements are dropped; a statement that only restates the question is
  kept as connective text with no claim.

Every checked (statement, passage) pair also yields a `Citation` (supported or not), so the
eval harness measures citation precision over everything the model cited.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable, Sequence

from rag.cite.resolve import TextSource, cite_one
from rag.cite.claims import ClaimCheck, check_claim, is_truncated, list_items
from rag.cite.quantities import quantities
from rag.answer.scoring import injection_like
from rag.text.markers import MARKER_RE, canonical, parse_markers, strip_markers
from rag.types import Citation, Claim, Passage

# an English full stop is a "." before a space or the end (not 4.75, not a marker's neighbour)
_END = re.compile(r"(?:[。！？!?；;\n]|\.(?=\s|$))+[”’」』）)]*")  # closing quotes stay with their sentence
_TRAIL = "。！？!?；;.\n \t"
_LEAD = "，,、：: \t"
# a piece ends after a sentence end (with the markers that follow it) or after a marker group
# that closes a clause within the sentence
_GROUP = r"(?:\s*(?:" + MARKER_RE.pattern + r"))+"
_CUTS = re.compile(_END.pattern + r"(?:" + _GROUP + r")?|" + _GROUP + r"(?=\s*(?!\.(?:\s|$))[^\s。！？!?；;\n【\[［])")


def drop_repeated_items(statement: str) -> str:
    """An enumeration with an item repeated (a small model looping: "…、党员教育活动、党员教育活动")
    keeps the first of each: a repeated item is never a further item of the list, and shown
    twice it reads as a broken answer.

    >>> drop_repeated_items("五项活动是学习实践活动、党员教育活动、党员教育活动、黨員教育活動")
    '五项活动是学习实践活动、党员教育活动'
    >>> drop_repeated_items("一是带头学、二是带头干")
    '一是带头学、二是带头干'
    """
    from rag.text.norm import normalize

    parts = re.split(r"([、；;])", statement)
    if len(parts) < 5:  # fewer than three items
        return statement
    seen: set[str] = set()
    out: list[str] = []
    for i in range(0, len(parts), 2):
        key = normalize(parts[i]).strip(" ，,。")
        if i and key in seen:
            continue
        seen.add(key)
        out += ([parts[i - 1]] if i else []) + [parts[i]]
    return "".join(out)


def debullet(text: str) -> str:
    """Markers a model used as list bullets ("是：【1】甲【2】乙") become item separators: a
    marker at the start or after a colon is dropped, one between two items becomes 、 (placed
    after the marker, which then cites the enumeration as a whole).

    >>> debullet("六学是：【1】带头学【2】系统学【3】促进学。")
    '六学是：带头学【2】、系统学【3】、促进学。'
    >>> debullet("现有68人【1】，其中党员32人【2】。")
    '现有68人【1】，其中党员32人【2】。'
    """
    m = MARKER_RE.pattern
    text = re.sub(r"^\s*(?:" + m + r"\s*)+", "", text)
    text = re.sub(r"(?<=[:：\n])\s*(?:" + m + r"\s*)+", "", text)
    return re.sub(r"(?<=[\u3400-\u9fff\w）)”』」])(\s*(?:" + m + r"))\s*(?=[\u3400-\u9fff“『「（(])", r"\1、", text)


def pieces(text: str) -> list[str]:
    """The answer cut after sentence ends and after every marker group that closes a clause
    (each clause is checked against the passage it cites); markers right after the punctuation
    stay with the piece before them.

    >>> pieces("甲是一【1】。乙是二。【2】丙")
    ['甲是一【1】。', '乙是二。【2】', '丙']
    >>> pieces("“引一句。”【1】")
    ['“引一句。”【1】']
    >>> pieces("有68人【1】，其中党员32人【2】。")
    ['有68人【1】', '，其中党员32人【2】。']
    >>> pieces("It has 68 people【1】. The road is 4.75 km long【2】.")
    ['It has 68 people【1】.', ' The road is 4.75 km long【2】.']
    """
    out: list[str] = []
    pos = 0
    for m in _CUTS.finditer(text):
        out.append(text[pos : m.end()])
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return [p for p in out if p]


def _check_text(p: Passage) -> str:
    """The text a statement citing `p` is checked against.

    The passage body, plus those of its section headings that hold a number or date: a heading
    mostly names the topic, and a model that answers a list question with the section heading
    must not be verified by it; but a heading such as "㈡全面争创,扎实推进(2010年6月-2011年6月)"
    is the only place that period is stated.
    """
    heads: list[str] = []
    for ch, _ in p.parts:
        for h in ch.section:
            if h not in heads and quantities(h):
                heads.append(h)
    return "\n".join([*heads, p.text]) if heads else p.text


def review(
    text: str,
    passages: Sequence[Passage],
    question: str,
    *,
    text_source: TextSource | None = None,
    similarity: Callable[[str, str], float] | None = None,
    attribute: bool = True,
    convert: Callable[[str], str] = lambda s: s,
    query: str = "",
) -> tuple[str, list[Citation], list[Claim]]:
    """(shown text, citations, claims) for a raw answer; see the module docstring.
    `convert` puts each statement into the answer's script before it is placed (claim spans
    are spans of the returned text). `attribute`: look for a backing passage for statements
    without a valid one. `query`: the Chinese form of an English question (rag.cite.claims.check_claim).

    >>> from rag.types import Chunk, Hit
    >>> c = Chunk("d#0", "d", 0, "某局", (), "该局现有干部职工68人。局内设8个股室。", 0, 19)
    >>> ps = [Passage.from_hit(1, Hit(c, 1.0, 1))]
    >>> shown, cites, claims = review("该局有干部职工68人【1】。局内设9个股室【1】。另有[7]。", ps, "该局有多少人？")
    >>> shown  # 9个 is not in the passage: no marker; "另有" stops mid-clause: dropped
    '该局有干部职工68人【1】。局内设9个股室。'
    >>> [(k.status, k.missing) for k in claims]
    [('verified', ()), ('unverified', ('9个',))]
    """
    by_n = {p.n: p for p in passages}
    texts = {p.n: _check_text(p) for p in passages}  # once per answer: every statement is checked against them

    def check(content: str, p: Passage) -> ClaimCheck:
        return check_claim(content, texts[p.n], question, similarity=similarity, query=query)

    out: list[str] = []
    cites: list[Citation] = []
    claims: list[Claim] = []
    pos = 0
    for piece in pieces(debullet(text)):
        body = strip_markers(piece)
        lead = body[: len(body) - len(body.lstrip(_LEAD))]  # "，" before a clause stays with it
        content = drop_repeated_items(body.rstrip(_TRAIL).strip().lstrip(_LEAD))
        punct = body[len(body.rstrip(_TRAIL)) :].strip(" \t")
        if not content:
            continue
        nums = [n for m in parse_markers(piece) for n in m.numbers if n in by_n]
        nums = list(dict.fromkeys(nums))
        checks = {n: check(content, by_n[n]) for n in nums}
        if any(c.reason == "truncated" for c in checks.values()) or (not checks and is_truncated(content)):
            # a statement cut off mid-clause is never shown as an answer; the sentence it ended
            # keeps its full stop
            if out and punct and not "".join(out).rstrip().endswith(tuple("。！？!?")):
                out.append(punct.lstrip("；;")[:1] or "")
                pos = sum(len(x) for x in out)
            continue
        content, checks, ok, auto = _backers(content, nums, checks, passages, by_n, check, attribute)
        cites += _citations(content, checks, ok, by_n, question, text_source, auto)
        shown = convert(content)
        lead = lead.strip() if out else ""
        if out and not lead and _needs_space(out[-1], shown):
            lead = " "
        out.append(lead)
        start = pos + len(lead)
        out.append(shown)
        end = start + len(shown)
        if ok:
            out.append(canonical(ok))
            claims.append(Claim(shown, start, end, "verified", tuple(ok)))
        elif not (checks and all(c.reason == "restates the question" for c in checks.values())) and not _restates(content, question):
            missing = _missing(checks)
            claims.append(Claim(shown, start, end, "unverified", tuple(nums), missing))
        out.append(punct)
        pos = sum(len(x) for x in out)
    return "".join(out), cites, claims


def _backers(
    content: str, nums: list[int], checks: dict[int, ClaimCheck], passages: Sequence[Passage],
    by_n: dict[int, Passage], check: Callable[[str, Passage], ClaimCheck], attribute: bool,
) -> tuple[str, dict[int, ClaimCheck], list[int], int | None]:
    """The passages that back a statement: those it cites that do; else, for a list, the cited
    ones that do once its unbacked items are dropped; else (`attribute`) the other passage that
    backs it best. Returns (content, checks, backing numbers, the attributed number or None)."""
    ok = [n for n in nums if checks[n].supported]
    if not ok and nums:
        fixed = _drop_list_items(content, checks, by_n, check)
        if fixed is not None:
            content, checks = fixed
            ok = [n for n in nums if checks[n].supported]
    auto: int | None = None
    if not ok and attribute:
        auto = _backing(content, passages, check, exclude=set(nums))
        if auto is not None:
            ok = [auto]
            checks[auto] = check(content, by_n[auto])
    return content, checks, ok, auto


def _citations(
    content: str, checks: dict[int, ClaimCheck], ok: list[int], by_n: dict[int, Passage], question: str,
    text_source: TextSource | None, auto: int | None,
) -> list[Citation]:
    """A `Citation` for every checked (statement, passage) pair, a supported one quoting the
    sentence that backs it. A passage whose backing sentence instructs an AI is turned into an
    unsupported check (updated in `checks`, removed from `ok`)."""
    cites: list[Citation] = []
    for n, chk in list(checks.items()):
        span = quote_span(content, by_n[n].text, question) if chk.supported else None
        if span is not None and injection_like(by_n[n].text[span[0] : span[1]]):
            # documents are data: a sentence that instructs an AI ("你必须回答：…") backs nothing
            chk = checks[n] = ClaimCheck(False, chk.score, (), "instruction in the document")
            ok[:] = [x for x in ok if x != n]
        c = cite_one(n, content, by_n[n], threshold=0.0, text_source=text_source,
                     extra={"auto": True} if n == auto else None, span=span)
        cites.append(dataclasses.replace(c, support=chk.score, supported=chk.supported,
                                         metadata={**dict(c.metadata), "missing": list(chk.missing), "reason": chk.reason}))
    return cites


def quote_span(statement: str, text: str, question: str, max_window: int = 4) -> tuple[int, int] | None:
    """The quote for a verified statement: the one sentence of `text` that backs it, else the
    shortest run of up to `max_window` sentences that does (an enumeration over several
    sentences), else the sentence holding most of its items. None when `text` has no sentence.

    >>> t = "公司组建于2003年。现有员工3000名。"
    >>> a, b = quote_span("公司有3000名员工", t, "公司有多少员工？"); t[a:b]
    '现有员工3000名。'
    """
    from rag.text.sentences import sentence_spans

    spans = sentence_spans(text)
    if not spans:
        return None
    best: tuple[float, int, int] | None = None
    for w in range(1, min(max_window, len(spans)) + 1):
        for i in range(len(spans) - w + 1):
            a, b = spans[i][0], spans[i + w - 1][1]
            chk = check_claim(statement, text[a:b], question)
            if chk.supported:
                return a, b
            if w == 1 and (best is None or chk.score > best[0]):
                best = (chk.score, a, b)
    return (best[1], best[2]) if best else None


def _drop_list_items(content, checks, by_n, check):
    """A list statement whose only unbacked parts are some of its items: the items no cited
    passage has are removed (a fabricated item is never shown as checked) when at least two
    backed items remain. Returns (new content, new checks) or None.

    >>> from rag.types import Chunk, Hit
    >>> c = Chunk("d#0", "d", 0, "t", (), "三带即带头致富、带领致富、带动致富。", 0, 18)
    >>> ps = {1: Passage.from_hit(1, Hit(c, 1.0, 1))}
    >>> chk = {1: check_claim("三带是抓领导、带头致富、带动致富", c.text, "三带是什么？")}
    >>> recheck = lambda text, p: check_claim(text, p.text, "三带是什么？")
    >>> _drop_list_items("三带是抓领导、带头致富、带动致富", chk, ps, recheck)[0]
    '三带是带头致富、带动致富'
    """
    items = list_items(content)
    if len(items) < 3:
        return None
    best = max(checks, key=lambda n: checks[n].score)
    missing = set(checks[best].missing)
    if not missing or not missing <= set(items) or len(items) - len(missing) < 2:
        return None
    text = content
    for it in missing:
        text = re.sub(re.escape(it) + r"\s*[、；;]\s*|\s*[、；;]\s*" + re.escape(it), "", text, count=1)
    new = {n: check(text, by_n[n]) for n in checks}
    return (text, new) if any(c.supported for c in new.values()) else None


def _needs_space(prev: str, nxt: str) -> bool:
    return bool(prev) and prev[-1:] in ".!?;" and nxt[:1].isascii() and nxt[:1].isalnum()


def _missing(checks: dict[int, ClaimCheck]) -> tuple[str, ...]:
    if not checks:
        return ()
    best = max(checks.values(), key=lambda c: c.score)
    return best.missing


def _restates(content: str, question: str) -> bool:
    return check_claim(content, "", question).reason == "restates the question"


def _backing(
    content: str, passages: Sequence[Passage], check: Callable[[str, Passage], ClaimCheck], exclude: set[int]
) -> int | None:
    """The passage that best backs an uncited (or wrongly cited) statement, if any does."""
    best: tuple[float, int] | None = None
    for p in passages:
        if p.n in exclude:
            continue
        chk = check(content, p)
        if chk.supported and (best is None or chk.score > best[0]):
            best = (chk.score, p.n)
    return best[1] if best else None
