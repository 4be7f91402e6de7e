"""Page furniture, line by line: which lines of a scraped page, a PDF or an OCR'd scan are
breadcrumbs, widgets, pagination, editor lines or page numbers (`boilerplate_kind`). Used by
rag.ingest.clean; see its docstring for the whole list of rules. General rules only: none names a
particular site or file.
"""

from __future__ import annotations

import re

# ---------------------------------------------------------------------------------------------
# boilerplate lines

# whitespace other than the line break: what lines are trimmed of (also rag.ingest.clean and repair)
WS = " \t\u3000\xa0\u2002\u2003\u2009\u200a\u202f\u205f\x0b\x0c"
# "您当前的位置：" "当前位置：" "所在位置：" (a bare "位置：…" is content: a place's location)
_BREADCRUMB_HEAD = re.compile(
    r"^[(（\[]?\s*(?:(?:您|你)\s*(?:的)?\s*(?:当前|當前|目前|现在|現在)?|当前|當前|目前|现在|現在|所在)"
    r"\s*(?:的|所在)?\s*(?:所在)?\s*位置\s*[:：]"
)
_CRUMB_SEP = re.compile(r"\s*(?:>>?|＞|›|»)\s*")  # not →: "申请→审核→批准" is content
_HOME = re.compile(r"^(?:首页|首頁|主页|主頁|网站首页|網站首頁|home)$", re.I)
# the value must look like names ("王凌霞", "王静、李四"), so "审核：由县委组织部负责。" stays content
EDITOR = re.compile(
    r"^[\[（(【]?\s*(责任编辑|責任編輯|责编|責編|编辑|編輯|值班编辑|值班編輯|校对|校對|审核|審核|审校|審校|监制|監製)"
    r"\s*[:：]\s*([^\s，,。；;：:）)\]】]{0,8}(?:[、/ ][^\s，,。；;：:）)\]】]{1,8}){0,3})\s*[\]）)】]?$"
)
# the roles whose line ends the article when it sits in the second half of the page (rag.ingest.clean)
EDITOR_ROLES = ("责任编辑", "責任編輯", "责编", "責編", "编辑", "編輯", "值班编辑", "值班編輯")
_PAGE_NUM = re.compile(
    r"^(?:[-—–－~～_]+\s*\d{1,4}\s*[-—–－~～_]+"
    r"|第\s*\d{1,4}\s*[页頁](?:\s*[/／,，]?\s*共\s*\d{1,4}\s*[页頁])?"
    r"|共\s*\d{1,4}\s*[页頁][,，]?\s*第\s*\d{1,4}\s*[页頁]"
    r"|(?i:page)\s*\d{1,4}(?:\s*(?i:of)\s*\d{1,4})?)$"
)
_PDF_PAGE_NUM = re.compile(r"^(?:\d{1,4}|\d{1,4}\s*/\s*\d{1,4})$")
_PAGINATION_TOKENS = re.compile(
    r"\[\s*\d{1,4}\s*\]|上一?[页頁]|下一?[页頁]|前一[页頁]|后一[页頁]|後一[頁页]|首[页頁]|尾[页頁]|末[页頁]|"
    r"共\s*\d+\s*[页頁]|第\s*\d+\s*[页頁]|[页頁]码|跳转|跳轉|(?i:prev(?:ious)?|next|first|last|go)\b|«|»|‹|›|<<|>>|\d{1,4}|\.\.\.|…"
)
_PAGINATION_WORD = re.compile(r"[页頁]|\[\s*\d+\s*\]")
_RESIDUE = re.compile(r"^[|｜\-:：\s]*$")
MD_IMAGE = re.compile(r"!\[[^\]\n]*\]\([^)\n]*\)")
# widget vocabulary, in simplified script (lines are t2s-folded before matching)
_WIDGET_WORDS = (
    "站内搜索|全站搜索|搜一搜|搜索|分享到|一键分享|分享|收藏本页|收藏本文|加入收藏|收藏|打印本页|打印本文|打印|"
    "关闭窗口|关闭本页|关闭|返回顶部|返回首页|返回列表|返回|顶部|字号|默认|推荐|我要评论|发表评论|评论|点赞|转发|复制链接|"
    "扫一扫|二维码|微信|朋友圈|新浪微博|腾讯微博|网易微博|搜狐微博|微博|qq空间|qzone|qq|人人网|开心网|豆瓣|贴吧|"
    "facebook|twitter|linkedin|更多|大|中|小|我要纠错|纠错|举报|我要投稿|投稿|我要留言|留言|手机看|手机版|电脑版|"
    "下载客户端|客户端|点击排行|排行榜|相关新闻|相关阅读|相关链接|相关文章|相关报道|延伸阅读|推荐阅读|热点推荐|热门推荐|"
    "热门文章|猜你喜欢|精彩推荐|网友评论|最新评论|热门评论|查看全文|阅读全文|展开全文"
)
_WIDGET_LINE = re.compile(rf"^(?:{_WIDGET_WORDS})+$")
_WIDGET_SEPS = re.compile(r"[\s|｜·•/、,，:：\-_\[\]【】()（）]+")
# "关注东北网" "关注我们" "订阅公众号" — but not a heading like "关注民生"
_FOLLOW = re.compile(
    r"^(?:关注|關注|订阅|訂閱)(?:我们|我們|本站|本网|本網|\S{0,8}(?:网|網|号|號|微博|微信|公众号|公眾號|客户端|客戶端|App|APP|频道|頻道))$"
)
_PREV_NEXT = re.compile(r"^(?:上一篇|下一篇|上一條|下一條|上一条|下一条)\s*[:：]")


def boilerplate_kind(line: str, fmt: str = "text") -> str | None:
    """Why a (trimmed) line is page residue, or None if it is content.

    >>> [boilerplate_kind(x) for x in ["您當前的位置 : 東北網 > 黑龍江", "搜 索", "關注東北網", "Qzone",
    ...  "[1]  [2]  [3]  下一页  尾页", "責任編輯:王凌霞", "![]() |", "|||", "- 12 -", "第 3 页", "正文。"]]
    ['breadcrumb', 'widget', 'widget', 'widget', 'pagination', 'editor', 'residue', 'residue', 'page-number', 'page-number', None]
    """
    s = line.strip(WS)
    if not s:
        return "blank"
    if _RESIDUE.match(MD_IMAGE.sub("", s)):
        return "residue"
    if _PAGE_NUM.match(s) or (fmt == "pdf" and _PDF_PAGE_NUM.match(s)):
        return "page-number"
    if len(s) <= 200 and _BREADCRUMB_HEAD.match(s):
        return "breadcrumb"
    if len(s) <= 150:
        parts = [p for p in _CRUMB_SEP.split(s) if p]
        seps = len(_CRUMB_SEP.findall(s))
        if seps >= 1 and all(len(p) <= 20 for p in parts) and not re.search(r"[。！？!?；;]", s):
            if seps >= 2 or (parts and _HOME.match(parts[0].strip())):
                return "breadcrumb"
    if len(s) <= 120 and _PAGINATION_WORD.search(s) and not _PAGINATION_TOKENS.sub("", s).strip(WS + "|｜-—,，.。:：[]"):
        return "pagination"
    if len(s) <= 60 and EDITOR.match(s):
        return "editor"
    if len(s) <= 30:
        from rag.text.norm import normalize

        n = _WIDGET_SEPS.sub("", normalize(s))
        if n and (_WIDGET_LINE.match(n) and not re.fullmatch(r"[大中小]", n)):
            return "widget"
        if _FOLLOW.match(s.replace(" ", "")):
            return "widget"
    if len(s) <= 100 and _PREV_NEXT.match(s):
        return "widget"
    return None
