"""The web chat end to end.

Fast tests (stand-ins, no Gradio server): the web chat glue (ui/, rag/apps/service.py) — turning `Assistant.ask`
events into chat bubbles/status/panel, uploads with one bad file, KB creation, example
questions, auth parsing.

Slow test (fake assistant, real Gradio server, real browser): the web chat of this process with
a stand-in assistant whose answers have one verified and one unverified claim, checked in the DOM
and in its computed styles, plus the "理解为" line of a follow-up; its screenshot is saved.

Slow test (real everything): `rag chat` in a subprocess on a free localhost port with RAG_HOME in
a tmp dir (so the seeds get indexed with the real embedding model), driven by headless Debian
Chromium through the `playwright` package (never `playwright install`). The LLM is the configured
default (local llama.cpp) when it is installed, else the extractive backend. Screenshots go to
tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from rag.config import Config, PathsConfig, load_config
from rag.errors import ConfigError, RagError
from rag.types import Answer, Chunk, Citation, Claim, Evidence, Final, Hit, Status, Token

from _servers import free_port, running, wait_http  # tests/ is on sys.path (rootdir-relative, as _answer_kb)

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]


# ====================================================================== fast: glue with stand-ins


@dataclass(frozen=True)
class _Doc:
    doc_id: str
    title: str
    source: str
    n_chunks: int
    date: str
    added: str


def _chunk(i: int, text: str) -> Chunk:
    return Chunk(f"d{i}#0", f"d{i}", 0, f"文档{i}", ("一、",), text, 0, len(text), f"d{i}.txt", {"date": "2020-01-02"})


class FakeAssistant:
    """Plays a fixed event script and records what it was asked."""

    def __init__(self, fail: Exception | None = None):
        self.calls: list[tuple] = []
        self.fail = fail

    def ask(self, question, history=(), *, llm_backend=None, k=None, mode=None):
        self.calls.append((question, list(history), llm_backend, k, mode))
        yield Status("retrieve", "检索")
        hits = (Hit(_chunk(0, "甲在一九九九年成立。"), 0.9, 1), Hit(_chunk(1, "乙。"), 0.5, 2))
        yield Evidence(hits)
        if self.fail:
            raise self.fail
        yield Status("generate", "生成回答")
        text = "甲成立于一九九九年【1】。"
        for ch in text:
            yield Token(ch)
        c = hits[0].chunk
        cit = Citation(1, c.chunk_id, c.doc_id, c.title, c.section, c.source, 0, 10, "甲在一九九九年成立。", 0, 10, 0.9, True)
        yield Final(Answer(question, text, (cit,), False, hits, {"total": 0.5}, "fake", question, True))


class FakeKB:
    def __init__(self):
        self.docs: list[_Doc] = []

    def documents(self):
        return list(self.docs)

    def add_documents(self, docs, progress=False):
        # rag.index.uploads reads the file itself (real ingest) and hands over Documents
        for d in docs:
            self.docs.append(_Doc(d.doc_id, d.title, d.source, 2, "", "2026-01-01T00:00:00"))
        return SimpleNamespace(failures=[], added=[d.doc_id for d in docs], updated=[], n_chunks=2 * len(self.docs))

    def delete_document(self, doc_id):
        self.docs = [d for d in self.docs if d.doc_id != doc_id]


def _services(tmp_path, assistant=None):
    from rag.apps.service import Services

    cfg = Config(paths=PathsConfig(home=str(tmp_path / "home"), seeds_dir=str(tmp_path / "noseeds")))
    kbs: dict[str, FakeKB] = {}
    a = assistant or FakeAssistant()
    svc = Services(
        cfg,
        kb_opener=lambda name, c, create: kbs.setdefault(name, FakeKB()),
        assistant_factory=lambda kb, c: a,
        kb_lister=lambda c: sorted(kbs),
    )
    return svc, a, kbs


SETTINGS = {"kb": "seeds", "backend": "extractive", "model": "", "k": 3, "mode": "bm25"}


def test_run_turn_streams_then_links_citations(tmp_path):
    from ui.chat import run_turn

    svc, fake, _ = _services(tmp_path)
    bubbles = []  # the state is updated in place: snapshot the bubble at every step
    for state, status, panel in run_turn(svc, None, "甲哪年成立？", SETTINGS, min_interval=0):
        bubbles.append(state["messages"][-1]["content"])
    # settings reach ask(); first question has no history
    assert fake.calls == [("甲哪年成立？", [], "extractive", 3, "bm25")]
    assert any("typing" in b for b in bubbles)  # tokens were shown while streaming
    assert '<a class="cite" href="#src-0-1"' in bubbles[-1] and "typing" not in bubbles[-1]
    assert 'id="src-0-1"' in panel and '<mark class="quote">甲在一九九九年成立。</mark>' in panel
    assert "完成" in status and "spinner" not in status
    # the follow-up carries the first turn as history
    list(run_turn(svc, state, "那乙呢？", SETTINGS, min_interval=0))
    assert fake.calls[1][1] == [("甲哪年成立？", "甲成立于一九九九年【1】。")]
    assert len(state["messages"]) == 4 and 'href="#src-1-1"' in state["messages"][3]["content"]


def test_run_turn_shows_errors_without_traceback(tmp_path):
    from ui.chat import run_turn

    svc, _, _ = _services(tmp_path, FakeAssistant(fail=RagError("本地模型未安装：rag models install")))
    state, status, panel = list(run_turn(svc, None, "问题", SETTINGS))[-1]
    assert "error" in status and "extractive" in status
    assert "ans-error" in state["messages"][-1]["content"]
    assert state["turns"][0]["answer"] is None
    # an English reason from deeper down gets a Chinese lead in the Chinese interface
    from rag.errors import ModelNotInstalled

    svc3, _, _ = _services(tmp_path, FakeAssistant(fail=ModelNotInstalled("local model 'x' is not installed")))
    _, status, _ = list(run_turn(svc3, None, "问题", SETTINGS))[-1]
    assert "出错：模型尚未安装：local model" in status
    svc2, _, _ = _services(tmp_path, FakeAssistant(fail=ZeroDivisionError("boom")))
    state, status, _ = list(run_turn(svc2, None, "问题", SETTINGS))[-1]
    assert "内部错误" in status and "Traceback" not in state["messages"][-1]["content"]


def test_uploads_bad_file_does_not_stop_the_others(tmp_path):
    from rag.apps.service import index_uploads

    svc, _, kbs = _services(tmp_path)
    up = tmp_path / "up"
    up.mkdir()
    (up / "好.txt").write_text("正文。", encoding="utf-8")
    (up / "坏.pdf").write_bytes(b"%PDF-broken")
    (up / "x.exe").write_bytes(b"MZ")
    (up / "空.md").write_bytes(b"")
    big = up / "大.txt"
    big.write_bytes(b"a" * (svc.cfg.ui.max_upload_mb * 1024 * 1024 + 1))
    files = [up / n for n in ("好.txt", "坏.pdf", "x.exe", "空.md", "大.txt")]
    lines = index_uploads(svc, "seeds", files)
    got = {name: (st, msg) for st, name, msg in lines}
    assert got["好.txt"][0] == "ok"
    assert got["坏.pdf"][0] == "error" and got["坏.pdf"][1].startswith("无法读取：") and "PDF" in got["坏.pdf"][1]
    assert got["x.exe"][0] == "error" and "不支持的文件类型" in got["x.exe"][1]
    assert got["空.md"] == ("error", "文件是空的")
    assert got["大.txt"][0] == "error" and "上限 20 MB" in got["大.txt"][1]
    assert [d.doc_id for d in kbs["seeds"].documents()] == ["好"]
    # the bad file's stored copy is removed, the good one stays for re-indexing
    assert sorted(p.name for p in svc.uploads_dir("seeds").iterdir()) == ["好.txt"]


def test_delete_and_create_kb(tmp_path):
    from rag.apps.service import create_kb, delete_document, index_uploads

    svc, _, kbs = _services(tmp_path)
    f = tmp_path / "a.txt"
    f.write_text("正文", encoding="utf-8")
    index_uploads(svc, "seeds", [f])
    assert delete_document(svc, "seeds", "a") == "已删除 a"
    assert kbs["seeds"].documents() == [] and not (svc.uploads_dir("seeds") / "a.txt").exists()
    with pytest.raises(ConfigError):
        delete_document(svc, "seeds", "a")
    assert create_kb(svc, " 报告_2024 ") == "报告_2024"
    for bad in ("", "../etc", ".hidden", "a/b", "x" * 65):
        with pytest.raises(ConfigError):
            create_kb(svc, bad)
    with pytest.raises(ConfigError):
        create_kb(svc, "报告_2024")  # exists
    # names arrive from the browser: paths are refused before anything is opened or written
    for bad in ("../../etc", "/tmp/x", ".."):
        with pytest.raises(ConfigError):
            svc.kb(bad, create=True)
        with pytest.raises(ConfigError):
            index_uploads(svc, bad, [f])


def test_example_questions_from_evalset_or_titles(tmp_path):
    from ui.examples import example_questions

    seeds = tmp_path / "repo" / "seeds"
    es = tmp_path / "repo" / "evalsets" / "mykb"
    (es / "qrels").mkdir(parents=True)
    seeds.mkdir(parents=True)
    rows = [
        {"_id": "q1", "text": "第一问？"},
        {"_id": "q2", "text": "同一文档的第二问？"},
        {"_id": "q3", "text": "追问？"},
        {"_id": "q4", "text": "不可回答的问题？"},
        {"_id": "q5", "text": "另一文档的问题？"},
    ]
    (es / "queries.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    (es / "corpus.jsonl").write_text("", encoding="utf-8")
    (es / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tA\t1\nq2\tA\t1\nq3\tB\t1\nq5\tC\t1\n", encoding="utf-8")
    ans = [
        {"query_id": "q3", "answers": ["x"], "follow_up_of": "q1", "answerable": True},
        {"query_id": "q4", "answers": [], "answerable": False},
    ]
    (es / "answers.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ans), encoding="utf-8")
    cfg = Config(paths=PathsConfig(home=str(tmp_path / "h"), seeds_dir=str(seeds)))
    # one per document, no follow-ups, no unanswerable questions
    assert example_questions(cfg, "mykb") == ["第一问？", "另一文档的问题？"]
    cfg.ui.examples = ["配置的问题？"]
    assert example_questions(cfg, "mykb") == ["配置的问题？"]
    cfg.ui.examples = []
    svc, _, kbs = _services(tmp_path)
    kbs["other"] = FakeKB()
    kbs["other"].docs = [_Doc("x", "年度报告", "x.txt", 1, "", "")]
    assert example_questions(cfg, "other", svc) == ["《年度报告》主要讲了什么？"]


def test_build_app_constructs_with_this_gradio(tmp_path):
    gr = pytest.importorskip("gradio")
    from ui.app import build_app, launch_kwargs

    svc, _, kbs = _services(tmp_path)
    kbs["seeds"] = FakeKB()
    demo = build_app(svc.cfg, svc)
    assert isinstance(demo, gr.Blocks)
    kw = launch_kwargs(svc.cfg)
    assert kw["max_file_size"] == "20mb" and "a.cite" in kw["head"] and ".src-card" in kw["css"]
    # no web fonts: every theme font is a plain system font name and the CSS imports nothing
    theme = kw["theme"]
    assert all(type(f) is str for f in [*theme._font, *theme._font_mono])
    assert "@import" not in theme._get_theme_css() and "googleapis" not in theme._get_theme_css()


def test_rag_chat_indexes_the_seeds_on_first_start(tmp_path):
    from rag.apps.commands.chat import ensure_kb

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text("甲文件\n\n甲在一九九九年成立。它有三个部门。", encoding="utf-8")
    (seeds / "b.txt").write_text("乙文件\n\n乙在二〇〇五年成立。", encoding="utf-8")
    cfg = Config(paths=PathsConfig(home=str(tmp_path / "home"), seeds_dir=str(seeds)))
    cfg.embed.model = "fake"
    cfg.embed.cache = False
    import io

    out = io.StringIO()
    assert "chunks" in ensure_kb(cfg, out=out)
    assert "first start: indexing 2 seed files" in out.getvalue()
    from rag.index.kb import KnowledgeBase, list_kbs

    assert list_kbs(cfg) == ["seeds"]
    assert sorted(d.doc_id for d in KnowledgeBase.open("seeds", cfg).documents()) == ["a", "b"]
    # second start: nothing is re-indexed
    out2 = io.StringIO()
    assert ensure_kb(cfg, out=out2).startswith("knowledge base 'seeds': 2 documents") and out2.getvalue() == ""
    # another missing name is created empty, not filled with the seeds
    other = cfg.replace(paths={"kb": "mine"})
    assert "new and empty" in ensure_kb(other, out=io.StringIO())


def test_parse_auth():
    from ui.app import parse_auth

    assert parse_auth("") is None
    assert parse_auth("ann:s3:cret") == ("ann", "s3:cret")
    for bad in ("ann", ":pw", "ann:"):
        with pytest.raises(ConfigError):
            parse_auth(bad)


# ====================================================================== slow: real app, real browser

SEED_QUESTION = "省委纪念中国共产党成立89周年的座谈会是哪天召开的？"
UPLOAD_DOC = (
    "# 青松县2025年水利工作简报\n\n"
    "青松县水务局 2025年12月发布\n\n"
    "## 一、工程建设\n\n"
    "2025年，青松县共新建小型水库七座，总投资三千二百万元，新增灌溉面积一万二千亩。"
    "全部水库均于当年十月底前完成蓄水验收。\n\n"
    "## 二、河道治理\n\n"
    "全年清理河道四十六公里，修复堤防十一处。\n"
)
UPLOAD_QUESTION = "青松县2025年新建了几座小型水库？"
XSS_DOC = (
    "紫藤小学安全提示\n\n"
    "紫藤小学的校训是勤学善思。<script>window.__xss=1;alert('xss-script')</script>"
    "<img src=x onerror=\"window.__xss=2;alert('xss-img')\">"
    "详见[校园安全须知](javascript:window.__xss=3;alert('xss-link'))。"
    "模板 ${window.__xss=4} 与 {{7*7}} 不应被执行。\n"
)
XSS_QUESTION = "紫藤小学的校训是什么？"


def _pick_backend(models_dir: str) -> str:
    """The configured default (local) when installed, else extractive; RAG_E2E_LLM overrides."""
    if os.environ.get("RAG_E2E_LLM"):
        return os.environ["RAG_E2E_LLM"]
    cfg = load_config()
    if cfg.llm.backend != "local":
        return cfg.llm.backend
    import importlib.util

    # find_spec, not import: importing llama_cpp here would fix this process's kernels (rag.llm.kernels)
    if importlib.util.find_spec("llama_cpp") is not None:
        from rag.llm.install import is_installed

        if is_installed(cfg.llm.model, models_dir):
            return "local"
    return "extractive"


@contextlib.contextmanager
def rag_chat(home: Path, llm: str, timeout: float, **env: str) -> Iterator[SimpleNamespace]:
    """`rag chat --llm LLM` in a subprocess on a free port with RAG_HOME=home (its log:
    home/server.log), once its page answers: (url, proc, log)."""
    port = free_port()
    env = dict(os.environ, RAG_HOME=str(home), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
               PYTHONUNBUFFERED="1", **env)
    env.pop("RAG_CONFIG", None)
    log, url = home / "server.log", f"http://127.0.0.1:{port}/"
    with running([sys.executable, "-m", "rag", "chat", "--port", str(port), "--llm", llm], log, env=env, cwd=ROOT) as proc:
        wait_http(url, proc, log, timeout=timeout, interval=2, what="rag chat")
        yield SimpleNamespace(url=url, proc=proc, log=log)


@pytest.fixture(scope="module")
def live_app(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (bash scripts/run.sh test does)")
    home = tmp_path_factory.mktemp("rag-home")
    models_dir = load_config().paths.models_dir  # the real model cache, resolved before RAG_HOME moves
    backend = _pick_backend(models_dir)
    # 900 s: indexing the seeds with the real model on a busy 2-core machine
    with rag_chat(home, backend, 900, RAG_MODELS_DIR=str(models_dir)) as app:
        yield SimpleNamespace(url=app.url, home=home, backend=backend, log=app.log, proc=app.proc)


@pytest.fixture(scope="module")
def browser():
    pw_api = pytest.importorskip("playwright.sync_api")
    with pw_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Page:
    """The chat page with the checks every step needs (dialogs, external requests, errors)."""

    def __init__(self, browser, url: str):
        self.pg = browser.new_page(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
        self.dialogs: list[str] = []
        self.external: list[str] = []
        self.errors: list[str] = []
        self.pg.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.pg.on("pageerror", lambda e: self.errors.append(str(e)))
        self.pg.on(
            "request",
            lambda r: self.external.append(r.url)
            if not r.url.startswith((url.rstrip("/"), "data:", "blob:", "about:"))
            else None,
        )
        self.pg.goto(url)
        self.pg.wait_for_selector("#question textarea", timeout=60_000)

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        p = ARTIFACTS / f"{name}.png"
        self.pg.screenshot(path=str(p), full_page=False)
        return p

    def bubbles(self) -> int:
        return self.pg.locator("#chatbot .message.bot").count()

    def ask(self, question: str, timeout_s: float = 900) -> str:
        """Send a question; wait for the streamed answer to finish; return the last bubble's HTML.

        Also checks the page was never frozen: the status line showed a busy stage."""
        n0 = self.bubbles()
        # a MutationObserver notes the busy status line and the typing cursor however briefly
        # they are on screen (an extractive answer takes well under a second)
        self.pg.evaluate(
            """() => {
            window.__busy = false; window.__typing = false;
            if (!window.__obs) {
                window.__obs = new MutationObserver(() => {
                    if (document.querySelector('#status .status.busy')) window.__busy = true;
                    if (document.querySelector('#chatbot .typing')) window.__typing = true;
                });
                window.__obs.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
            }
        }"""
        )
        self.pg.fill("#question textarea", question)
        self.pg.press("#question textarea", "Enter")
        t0 = time.time()
        while time.time() - t0 < timeout_s:
            if self.bubbles() > n0:
                last = self.pg.locator("#chatbot .message.bot").last.inner_html()
                if "ans-foot" in last or "ans-error" in last:
                    assert "ans-error" not in last, f"the answer failed: {last}"
                    assert self.pg.evaluate("window.__busy"), "no status was shown while answering"
                    self.streamed = self.pg.evaluate("window.__typing")
                    return last
            time.sleep(0.25)
        raise AssertionError(f"no answer to {question!r} within {timeout_s} s")

    def tab(self, label: str) -> None:
        self.pg.get_by_role("tab", name=label).click()
        time.sleep(0.5)


def _assert_no_injection(page: Page) -> None:
    pg = page.pg
    assert page.dialogs == [], f"a dialog fired: {page.dialogs}"
    assert pg.evaluate("typeof window.__xss") == "undefined"
    injected = pg.evaluate(
        """() => {
        const scope = document.querySelectorAll('#chatbot, #sources, #docs-table, #upload-report');
        let bad = [];
        scope.forEach(el => el.querySelectorAll('script, iframe, object, embed, img, [onerror], [onclick], [onload]')
            .forEach(x => bad.push(x.outerHTML.slice(0, 120))));
        document.querySelectorAll('a[href]').forEach(a => {
            if (/^\\s*javascript:/i.test(a.getAttribute('href'))) bad.push(a.outerHTML.slice(0, 120));
        });
        return bad;
    }"""
    )
    assert injected == [], f"injected elements: {injected}"


@pytest.mark.slow
def test_chat_in_a_real_browser(live_app, browser, tmp_path):
    page = Page(browser, live_app.url)
    pg = page.pg
    # first load: examples drawn from the seed corpus, empty source panel, nothing fetched outside
    assert pg.locator("#chatbot button.example").count() >= 1
    page.shot("01-home")

    # ---- a seed question: streamed answer, clickable citation, passage with the quote
    last = page.ask(SEED_QUESTION)
    assert page.streamed or live_app.backend == "extractive", "the answer was not streamed token by token"
    links = pg.locator("#chatbot .message.bot").last.locator("a.cite")
    assert links.count() >= 1, f"the seed answer has no citation link ({live_app.backend}): {last}"
    href = links.first.get_attribute("href")
    links.first.click()
    card = pg.locator(f"#sources {href}")
    card.wait_for(state="visible", timeout=10_000)
    pg.wait_for_function("id => document.getElementById(id).classList.contains('active')", arg=href[1:])
    quote = card.locator("mark.quote").first
    assert quote.is_visible()
    qtext = quote.inner_text().strip()
    assert len(qtext) >= 4 and qtext in card.locator(".src-text").inner_text()
    # the card names its document, date and source file
    meta = card.inner_text()
    assert "日期" in meta and "文件" in meta
    time.sleep(1)
    page.shot("02-seed-answer-citation")

    # ---- feedback: 👍 with a comment lands in SQLite with question, answer, citations, settings
    pg.locator("#chatbot button[aria-label='Like']").last.click()
    pg.locator("#fb-comment textarea").wait_for(state="visible", timeout=10_000)
    pg.fill("#fb-comment textarea", "引用准确")
    pg.click("#fb-send")
    pg.get_by_text("说明已保存").wait_for(timeout=10_000)
    db = sqlite3.connect(live_app.home / "feedback.sqlite3")
    rows = db.execute("SELECT question, rating, comment, citations, config FROM feedback").fetchall()
    db.close()
    assert len(rows) == 1 and rows[0][0] == SEED_QUESTION and rows[0][1] == 1 and rows[0][2] == "引用准确"
    assert json.loads(rows[0][3]) and json.loads(rows[0][4])["kb"] == "seeds"

    # ---- export the conversation as Markdown (rag.cite.report format)
    with pg.expect_download(timeout=30_000) as dl:
        pg.click("#export")
    md = Path(dl.value.path()).read_text(encoding="utf-8")
    assert SEED_QUESTION in md and qtext[:4] in md.replace("\n", "")

    # ---- documents: upload a good document, an XSS document and a broken one
    page.tab("文档 Documents")
    up = tmp_path / "upload"
    up.mkdir()
    (up / "qingsong_water_2025.md").write_text(UPLOAD_DOC, encoding="utf-8")
    (up / "xss_test.txt").write_text(XSS_DOC, encoding="utf-8")
    (up / "broken.pdf").write_bytes(b"%PDF-1.4\n this is not really a pdf \x00\x01")
    pg.locator("#upload input[type=file]").set_input_files([str(p) for p in sorted(up.iterdir())])
    time.sleep(2)
    pg.click("#upload-btn")
    pg.wait_for_function(
        "() => document.querySelectorAll('#upload-report li').length >= 3", timeout=600_000, polling=500
    )
    ok = pg.locator("#upload-report li.up-ok").all_inner_texts()
    err = pg.locator("#upload-report li.up-error").all_inner_texts()
    assert len(ok) == 2 and any("qingsong_water_2025.md" in t for t in ok), (ok, err)
    assert len(err) == 1 and "broken.pdf" in err[0], err
    table = pg.locator("#docs-table").inner_text()
    assert "qingsong_water_2025" in table and "xss_test" in table
    page.shot("03-documents")
    _assert_no_injection(page)

    # ---- ask about the uploaded document
    page.tab("问答 Chat")
    last = page.ask(UPLOAD_QUESTION)
    bubble_text = pg.locator("#chatbot .message.bot").last.inner_text()
    assert "七" in bubble_text or "7" in bubble_text, bubble_text
    links = pg.locator("#chatbot .message.bot").last.locator("a.cite")
    assert links.count() >= 1, last
    href = links.first.get_attribute("href")
    links.first.click()
    card = pg.locator(f"#sources {href}")
    card.wait_for(state="visible", timeout=10_000)
    assert "qingsong_water_2025" in card.inner_text()
    assert "七座" in card.locator("mark.quote").first.inner_text() or "七座" in card.inner_text()
    time.sleep(1)
    page.shot("04-upload-answer")

    # ---- a follow-up (history goes with it), with the extractive backend chosen in this session's settings
    pg.locator("#settings").get_by_text("设置 Settings").click()
    pg.get_by_label("抽取式 extractive (无生成)").check()
    page.ask("那新增灌溉面积是多少？")
    follow = pg.locator("#chatbot .message.bot").last.inner_text()
    assert "一万二千亩" in follow, follow
    assert pg.locator("#sources details.turn-src").count() == 3

    # ---- hostile document text on screen
    page.ask(XSS_QUESTION)
    sources = pg.locator("#sources").inner_text()
    assert "<script>" in sources or "onerror" in sources, "the XSS passage should be shown (as text)"
    time.sleep(2)  # give any injected handler time to run
    _assert_no_injection(page)
    page.shot("05-xss-document-inert")

    # ---- a second browser session shares the knowledge bases but nothing of this conversation
    other = Page(browser, live_app.url)
    assert other.bubbles() == 0 and other.pg.locator("#sources .src-empty").count() == 1
    other.tab("文档 Documents")
    assert "qingsong_water_2025" in other.pg.locator("#docs-table").inner_text()
    other.pg.close()

    assert page.external == [], f"the page fetched from outside the server: {page.external}"
    assert other.external == [], other.external
    assert not [e for e in page.errors if "xss" in e.lower()], page.errors


# ====================================================================== slow: claims in a real browser

# "甲成立于1999年【1】。乙成立于2003年。"
#  甲0 成1 立2 于3 1 4 9 5 9 6 9 7 年8 → verified claim [0, 9), its 【1】 at [9, 12), 。 at 12;
#  乙13 成14 立15 于16 2 17 0 18 0 19 3 20 年21 → unverified claim [13, 22), 。 at 22
CLAIMS_TEXT = "甲成立于1999年【1】。乙成立于2003年。"
CLAIMS = (
    Claim("甲成立于1999年", 0, 9, "verified", (1,)),
    Claim("乙成立于2003年", 13, 22, "unverified", (2,), ("2003年",)),
)
FOLLOW_UP_STANDALONE = "乙是哪一年成立的？"


class ClaimsAssistant:
    """Answers every question with CLAIMS_TEXT: 【1】 backs the first statement, nothing backs
    the second; a follow-up (non-empty history) is "understood" as FOLLOW_UP_STANDALONE."""

    def ask(self, question, history=(), *, llm_backend=None, k=None, mode=None):
        yield Status("retrieve", "检索")
        hits = (Hit(_chunk(0, "甲在1999年成立。"), 0.9, 1), Hit(_chunk(1, "乙在2001年成立。"), 0.5, 2))
        yield Evidence(hits)
        yield Status("generate", "生成回答")
        for ch in CLAIMS_TEXT:
            yield Token(ch)
        time.sleep(0.2)
        c0, c1 = hits[0].chunk, hits[1].chunk
        cites = (
            Citation(1, c0.chunk_id, c0.doc_id, c0.title, c0.section, c0.source, 0, 10, c0.text, 0, 10, 0.9, True, CLAIMS[0].text),
            Citation(2, c1.chunk_id, c1.doc_id, c1.title, c1.section, c1.source, 0, 10, c1.text, 0, 10, 0.2, False, CLAIMS[1].text),
        )
        standalone = FOLLOW_UP_STANDALONE if history else question
        yield Final(Answer(question, CLAIMS_TEXT, cites, False, hits, {"total": 0.3}, "fake", standalone, True, CLAIMS))


@pytest.fixture(scope="module")
def claims_app(tmp_path_factory):
    """This process's web chat (ui.app.serve) on a free port, answering with ClaimsAssistant."""
    pytest.importorskip("gradio")
    from ui.app import serve

    svc, _, kbs = _services(tmp_path_factory.mktemp("claims-home"), ClaimsAssistant())
    kbs["seeds"] = FakeKB()
    port = free_port()
    demo = serve(svc.cfg, host="127.0.0.1", port=port, services=svc, block=False)
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}/")
    finally:
        demo.close()


_CLAIM_STYLES = """() => {
    const bubble = [...document.querySelectorAll('#chatbot .message.bot')].pop();
    const bad = bubble.querySelector('.claim-unverified'), good = bubble.querySelector('.claim-verified');
    const st = e => { const s = getComputedStyle(e); return {border: s.borderBottomStyle, color: s.color, bg: s.backgroundColor}; };
    return {bad: st(bad), good: st(good), flag: getComputedStyle(bad.querySelector('.claim-flag')).display};
}"""


@pytest.mark.slow
def test_unverified_claims_look_different_in_a_real_browser(claims_app, browser, tmp_path):
    page = Page(browser, claims_app.url)
    pg = page.pg
    page.ask("甲和乙是哪一年成立的？", timeout_s=120)
    bubble = pg.locator("#chatbot .message.bot").last
    # the unverified statement: its own class, a tooltip naming what is missing, the label, no ✓
    bad = bubble.locator(".claim-unverified")
    assert bad.count() == 1, bubble.inner_html()
    assert bad.inner_text().replace("\n", "").startswith("乙成立于2003年") and "未核实" in bad.inner_text()
    assert "2003年" in (bad.get_attribute("title") or "")
    assert bad.locator("a.cite").count() == 0 and "✓" not in bad.inner_text() and "✓" not in bubble.inner_text()
    # the verified statement: plain, followed by its source link
    good = bubble.locator(".claim-verified")
    assert good.count() == 1 and good.inner_text() == "甲成立于1999年" and "未核实" not in good.inner_text()
    links = bubble.locator("a.cite")
    assert links.count() == 1 and links.first.get_attribute("href") == "#src-0-1"
    # visibly different to a person, not only in the markup
    st = pg.evaluate(_CLAIM_STYLES)
    assert st["bad"]["border"] == "dashed" and st["good"]["border"] != "dashed", st
    assert st["bad"]["color"] != st["good"]["color"] and st["flag"] != "none", st
    # the verified statement's marker opens its card, which carries the ✓
    links.first.click()
    card = pg.locator("#sources #src-0-1")
    card.wait_for(state="visible", timeout=10_000)
    assert "✓ 已核对" in card.inner_text()
    assert "理解为" not in bubble.inner_text()  # a first question is not rewritten

    # a follow-up: "理解为：…" above the answer, outside its text
    page.ask("那乙呢？", timeout_s=120)
    last = pg.locator("#chatbot .message.bot").last
    understood = last.locator(".ans-understood")
    assert understood.count() == 1 and understood.inner_text().strip() == f"理解为：{FOLLOW_UP_STANDALONE}"
    assert understood.locator(".claim-verified, .claim-unverified").count() == 0
    above = pg.evaluate("""() => {
        const b = [...document.querySelectorAll('#chatbot .message.bot')].pop();
        const u = b.querySelector('.ans-understood'), c = b.querySelector('.claim');
        return u.getBoundingClientRect().bottom <= c.getBoundingClientRect().top + 1;
    }""")
    assert above, "the 理解为 line is not above the answer"
    assert last.locator(".claim-unverified").count() == 1
    shot = tmp_path / "claims-verified-vs-unverified.png"
    pg.screenshot(path=str(shot), full_page=False)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert page.external == [] and page.errors == [], (page.external, page.errors)
    pg.close()
