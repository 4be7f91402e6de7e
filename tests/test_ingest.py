"""rag.ingest.load: encodings, bad files, formats (docx/pdf/html made here), ids, metadata."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rag.errors import IngestError, RagError
from rag.ingest.load import IngestFailure, decode_bytes, doc_id_for, iter_documents, load_file, load_paths

SEEDS = Path(__file__).resolve().parent.parent / "seeds"

TRAD = "這是繁體中文的報告。黨組織建設紮實推進，創先爭優活動深入開展。\n"
SIMP = "这是简体中文的报告。党组织建设扎实推进，创先争优活动深入开展。\n"


# ---- encodings


@pytest.mark.parametrize(
    "content,codec,expected",
    [
        (SIMP, "utf-8", "utf-8"),
        (SIMP, "utf-8-sig", "utf-8-sig"),
        (TRAD, "utf-8-sig", "utf-8-sig"),
        (SIMP, "gbk", "gb18030"),
        (SIMP, "gb18030", "gb18030"),
        (TRAD, "big5", "big5"),
        (TRAD, "gb18030", "gb18030"),  # traditional characters in a GB file
        (SIMP, "utf-16", "utf-16"),
        (SIMP, "utf-16-le", "utf-16-le"),  # no BOM
    ],
)
def test_encodings_detected(tmp_path, content, codec, expected):
    p = tmp_path / "doc.txt"
    p.write_bytes(content.encode(codec))
    doc = load_file(p)
    assert doc.text == content
    assert doc.metadata["encoding"] == expected
    assert "\ufeff" not in doc.text


def test_big5_is_not_read_as_gb18030_mojibake():
    # Big5 bytes are valid GB18030 too; the plausibility score must pick Big5
    data = (SEEDS / "001_75b9d2d6f7b67755.txt").read_text(encoding="utf-8")[:1500].encode("big5", errors="ignore")
    text, enc = decode_bytes(data)
    assert enc == "big5"
    assert "創先爭優" in text


def test_undecodable_bytes_are_an_error_not_mojibake(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(SIMP.encode("utf-8") + b"\xff\xfe\x81 ok" + SIMP.encode("gbk"))
    with pytest.raises(IngestError, match="cannot decode"):
        load_file(p)


def test_double_encoded_utf8_is_refused(tmp_path):
    p = tmp_path / "moji.txt"
    p.write_text(SIMP.encode("utf-8").decode("latin-1"), encoding="utf-8")
    with pytest.raises(IngestError, match="double-encoded"):
        load_file(p)


def test_truncated_utf8_is_reported(tmp_path):
    p = tmp_path / "cut.txt"
    p.write_bytes(SIMP.encode("utf-8")[:-2])
    with pytest.raises(IngestError, match="truncated"):
        load_file(p)


# ---- bad files


@pytest.mark.parametrize("data", [b"", b"   \n\n\t ", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n  \n"])
def test_empty_files(tmp_path, data):
    p = tmp_path / "empty.txt"
    p.write_bytes(data)
    with pytest.raises(IngestError, match="empty"):
        load_file(p)


@pytest.mark.parametrize(
    "data,match",
    [
        (b"\x00\x01\x02\x03binary\x00" * 50, "binary"),
        (bytes(range(1, 32)) * 40, "binary"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "PNG"),
        (b"PK\x03\x04" + b"\x00" * 100, "ZIP"),
    ],
)
def test_binary_files_renamed_txt(tmp_path, data, match):
    p = tmp_path / "binary.txt"
    p.write_bytes(data)
    with pytest.raises(IngestError, match=match):
        load_file(p)


def test_errors_are_rag_errors_with_the_path(tmp_path):
    p = tmp_path / "x.txt"
    p.write_bytes(b"")
    with pytest.raises(RagError) as e:
        load_file(p)
    assert str(p) in str(e.value)


def test_unsupported_and_missing(tmp_path):
    p = tmp_path / "a.xlsx"
    p.write_bytes(b"x")
    with pytest.raises(IngestError, match="unsupported"):
        load_file(p)
    with pytest.raises(IngestError, match="not found"):
        load_file(tmp_path / "nope.txt")


def test_one_bad_file_does_not_stop_the_others(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text(SIMP, encoding="utf-8")
    (tmp_path / "b.txt").write_bytes(b"")
    (tmp_path / "c.txt").write_bytes(b"\x00\x00binary")
    (tmp_path / "sub" / "d.md").write_text("# 标题\n\n" + SIMP, encoding="utf-8")
    (tmp_path / "e.pdf").write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\n")  # truncated
    (tmp_path / "ignored.csv").write_text("a,b", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text(SIMP, encoding="utf-8")
    docs, failures = load_paths([tmp_path])
    assert [d.doc_id for d in docs] == ["a", "sub/d"]
    assert sorted(Path(f.path).name for f in failures) == ["b.txt", "c.txt", "e.pdf"]
    assert all(isinstance(f, IngestFailure) and f.error for f in failures)
    msgs = {Path(f.path).name: f.error for f in failures}
    assert "empty" in msgs["b.txt"] and "binary" in msgs["c.txt"] and "truncated" in msgs["e.pdf"]
    # the generator form yields the same, in order
    items = list(iter_documents(tmp_path))
    assert [Path(getattr(i, "source", getattr(i, "path", ""))).name for i in items] == ["a.txt", "b.txt", "c.txt", "e.pdf", "d.md"]


def test_missing_path_is_a_failure():
    docs, failures = load_paths(["/nonexistent/folder"])
    assert docs == [] and failures[0].error == "no such file or folder"


# ---- ids and metadata


def test_doc_ids_stable_and_relative(tmp_path):
    (tmp_path / "reports" / "2010").mkdir(parents=True)
    p = tmp_path / "reports" / "2010" / "甲.txt"
    p.write_text(SIMP, encoding="utf-8")
    docs, _ = load_paths([tmp_path / "reports"])
    assert docs[0].doc_id == "2010/甲"
    assert load_file(p).doc_id == "甲"  # a single file: relative to its own folder
    assert doc_id_for(SEEDS / "000_dc80a8aaf43bbf11.txt", SEEDS) == "000_dc80a8aaf43bbf11"
    # a.txt and a.md in one folder must not collide
    (tmp_path / "a.txt").write_text(SIMP, encoding="utf-8")
    (tmp_path / "a.md").write_text(SIMP, encoding="utf-8")
    ids = sorted(d.doc_id for d in load_paths([tmp_path])[0])
    assert "a.md" in ids and "a.txt" in ids


def test_seed_metadata():
    docs, failures = load_paths([SEEDS])
    assert not failures and len(docs) == 5
    by = {d.doc_id: d for d in docs}
    d0 = by["000_dc80a8aaf43bbf11"]
    assert d0.title == "《深入開展創先爭優活動簡報》第11期"
    assert d0.metadata["date"] == "2010-11-26"
    assert d0.metadata["source_name"] == "東北網"
    assert "author" not in d0.metadata  # "作者:" is empty on that page
    assert d0.metadata["sha256"] == hashlib.sha256((SEEDS / "000_dc80a8aaf43bbf11.txt").read_bytes()).hexdigest()
    assert d0.metadata["format"] == "text" and d0.metadata["encoding"] == "utf-8"
    assert d0.source.endswith("seeds/000_dc80a8aaf43bbf11.txt")
    d4 = by["004_63ed4abae7436ac1"]
    assert (d4.metadata["date"], d4.metadata["source_name"], d4.metadata["author"]) == ("2012-07-15", "黑龙江日报", "常春晖")
    assert by["002_9dcdbbc46c15fef6"].title == "我局深入开展创先争优活动"
    assert by["002_9dcdbbc46c15fef6"].metadata["date"] == "2010-06-28"
    assert by["001_75b9d2d6f7b67755"].title.startswith("學先進趕先進作貢獻當表率")
    assert by["003_12bf688862e8a96f"].title == "党建示范点解说词"
    for d in docs:
        assert len(d.offsets) == len(d.clean)
        assert d.text == (SEEDS / f"{d.doc_id}.txt").read_text(encoding="utf-8")


# ---- formats: fixtures made here


def _make_docx(path: Path) -> None:
    import docx

    d = docx.Document()
    d.core_properties.title = "基层党建工作报告"
    d.core_properties.author = "python-docx"  # a generator placeholder: must not become the author
    d.add_heading("基层党建工作报告", 0)
    d.add_paragraph("按照上级部署，现将有关情况报告如下。")
    d.add_heading("一、基本情况", 1)
    d.add_paragraph("全县共有党员三万人。基层党组织建设扎实推进。")
    d.add_heading("（一）组织建设", 2)
    d.add_paragraph("新建党支部十八个，党小组一百余个。")
    t = d.add_table(rows=2, cols=2)
    t.cell(0, 0).text, t.cell(0, 1).text = "单位", "党员人数"
    t.cell(1, 0).text, t.cell(1, 1).text = "城关镇", "1200"
    d.add_heading("二、主要做法", 1)
    d.add_paragraph("坚持问题导向，狠抓落实。")
    d.save(str(path))


def test_docx(tmp_path):
    from rag.chunk.sections import chunk_document

    p = tmp_path / "报告.docx"
    _make_docx(p)
    doc = load_file(p)
    assert doc.title == "基层党建工作报告"
    assert doc.metadata["format"] == "docx" and "author" not in doc.metadata
    assert "单位 | 党员人数" in doc.clean and "城关镇 | 1200" in doc.clean
    chunks = chunk_document(doc)
    sections = [c.section for c in chunks]
    assert sections == [(), ("一、基本情况",), ("一、基本情况", "（一）组织建设"), ("二、主要做法",)]
    assert chunks[2].text.startswith("新建党支部十八个")
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text  # docx text is extracted as is


def test_corrupt_docx(tmp_path):
    p = tmp_path / "bad.docx"
    p.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(IngestError, match="docx"):
        load_file(p)


def _make_pdf(path: Path, pages: list[list[str]]) -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    c = canvas.Canvas(str(path))
    for lines in pages:
        c.setFont("STSong-Light", 12)
        y = 800
        for line in lines:
            c.drawString(50, y, line)
            y -= 18
        c.showPage()
    c.save()


PDF_PAGES = [
    [
        "关于加强基层党建工作的报告",
        "一、基本情况",
        "全县共有党员三万人，其中农村党员一万五千",
        "人，城镇党员一万五千人。基层党组织建设扎",
        "实推进，组织覆盖面不断扩大，战斗堡垒作用",
        "明显增强。",
        "- 1 -",
    ],
    [
        "二、主要做法",
        "坚持问题导向，狠抓工作落实，建立健全各项",
        "制度，形成了一级抓一级、层层抓落实的格局",
        "和长效机制。",
        "- 2 -",
    ],
]


def test_pdf_text_layer(tmp_path):
    from rag.chunk.sections import chunk_document

    p = tmp_path / "report.pdf"
    _make_pdf(p, PDF_PAGES)
    doc = load_file(p)
    assert doc.metadata["format"] == "pdf" and doc.metadata["pages"] == 2
    assert doc.title == "关于加强基层党建工作的报告"  # reportlab's "untitled" is ignored
    assert "- 1 -" not in doc.clean and "- 2 -" not in doc.clean
    assert "其中农村党员一万五千人，城镇党员" in doc.clean  # wrapped lines re-joined
    chunks = chunk_document(doc)
    assert [c.section for c in chunks] == [("一、基本情况",), ("二、主要做法",)]
    assert chunks[1].text == "坚持问题导向，狠抓工作落实，建立健全各项制度，形成了一级抓一级、层层抓落实的格局和长效机制。"


def test_truncated_pdf(tmp_path):
    p = tmp_path / "full.pdf"
    _make_pdf(p, PDF_PAGES)
    data = p.read_bytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError, match="truncated"):
        load_file(cut)


def test_pdf_without_text_layer(tmp_path):
    from reportlab.pdfgen import canvas

    p = tmp_path / "scan.pdf"
    c = canvas.Canvas(str(p))
    c.rect(100, 100, 200, 200, fill=1)  # only graphics, as a scanned page would be
    c.showPage()
    c.save()
    with pytest.raises(IngestError, match="no text layer"):
        load_file(p)


HTML = """<!DOCTYPE html><html><head><meta charset="{charset}">
<title>学习长沙经验 做好基层党建工作 - 某某网</title>
<meta name="author" content="王五"></head>
<body><header><a href="/">首页</a> | <a>新闻</a> | <a>登录</a></header>
<nav><ul><li>首页</li><li>时政</li></ul></nav>
<div class="crumb">您的位置：首页 &gt; 时政 &gt; 正文</div>
<div class="search">搜 索</div>
<h1>学习长沙经验 做好基层党建工作</h1>
<p class="info">2011-05-20 09:30 来源：某某日报 作者：李四</p>
<div class="share">分享到： 微信 | 微博 | QQ空间</div>
<p>为学习外地基层党建工作的好做法，市委组织部组织考察团赴长沙学习。</p>
<h2>一、几点启示</h2>
<p>选准载体是关键&amp;基础。配强班子是保障。</p>
<table><tr><td>项目</td><td>数量</td></tr><tr><td>社区</td><td>3</td></tr></table>
<h2>二、几点建议</h2>
<p>创新党员教育管理服务的新模式。</p>
<script>var tracker = "不应出现";</script><style>p {{color: red}}</style>
<div class="pages">[1] [2] 下一页 尾页</div>
<p>（责任编辑：赵六）</p>
<footer>版权所有 某某网</footer></body></html>"""


@pytest.mark.parametrize("charset,codec", [("utf-8", "utf-8"), ("gb2312", "gbk")])
def test_html(tmp_path, charset, codec):
    from rag.chunk.sections import chunk_document

    p = tmp_path / "page.html"
    p.write_bytes(HTML.format(charset=charset).encode(codec))
    doc = load_file(p)
    assert doc.title == "学习长沙经验 做好基层党建工作"
    assert doc.metadata["date"] == "2011-05-20"
    assert doc.metadata["source_name"] == "某某日报"
    assert doc.metadata["author"] == "李四"
    assert doc.metadata["editor"] == "赵六"
    for junk in ("首页", "搜 索", "分享到", "下一页", "不应出现", "color", "版权所有", "责任编辑", "登录"):
        assert junk not in doc.clean, junk
    chunks = chunk_document(doc)
    assert [c.section for c in chunks] == [(), ("一、几点启示",), ("二、几点建议",)]
    assert chunks[1].text == "选准载体是关键&基础。配强班子是保障。\n项目 | 数量\n社区 | 3"


def test_large_text_file_offsets_are_compact(tmp_path):
    """A multi-megabyte file: the offset map is an array of C ints, not a list of Python ints."""
    from array import array

    p = tmp_path / "big.txt"
    para = SIMP * 40 + "\n"
    p.write_text(para * 600, encoding="utf-8")  # ~1.3 MB
    doc = load_file(p)
    assert isinstance(doc.offsets, array) and doc.offsets.itemsize == 4
    assert len(doc.offsets) == len(doc.clean)


@pytest.mark.slow
def test_50mb_file_memory(tmp_path):
    """Ingesting and chunking a 50 MB text file stays within a sane memory budget (child
    process, peak RSS measured by the OS)."""
    import subprocess
    import sys

    p = tmp_path / "big.txt"
    seed = "".join(f.read_text(encoding="utf-8") for f in sorted(SEEDS.glob("*.txt"))).encode("utf-8") + b"\n"
    with p.open("wb") as f:
        for _ in range(50 * 2**20 // len(seed) + 1):
            f.write(seed)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forked parent, so in the full
    # suite (models loaded by earlier tests) the child reported the pytest process's 3 GB
    code = (
        "import re, sys\n"
        "from rag.ingest.load import load_file\n"
        "d = load_file(sys.argv[1])\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
        "print(len(d.clean), hwm)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, check=True).stdout.split()
    n_clean, rss_kb = int(out[0]), int(out[1])
    assert n_clean > 15_000_000
    assert rss_kb < 1_500_000  # < 1.5 GB for 50 MB of text (measured ≈ 0.5 GB)


def test_crlf_files_keep_their_offsets(tmp_path):
    from rag.chunk.sections import chunk_document

    raw = "标题行\r\n第一段内容。\r\n\r\n第二段内容。\r\n"
    p = tmp_path / "crlf.txt"
    p.write_bytes(raw.encode("gbk"))
    doc = load_file(p)
    assert doc.text == raw  # offsets are into the file's own characters, CR included
    (c,) = chunk_document(doc)
    assert c.text == "第一段内容。\n第二段内容。"
    assert doc.text[c.start : c.end] == "第一段内容。\r\n\r\n第二段内容。"


def test_gbk_with_many_symbols_is_still_plausible(tmp_path):
    # bullets, circled numbers, units and Roman numerals must not make a GBK file look like mojibake
    text = "①党组织建设●扎实推进■温度25℃，第Ⅱ阶段×3。\n" * 40
    p = tmp_path / "symbols.txt"
    p.write_bytes(text.encode("gbk"))
    doc = load_file(p)
    assert doc.text == text and doc.metadata["encoding"] == "gb18030"


def test_pdf_running_headers_and_footers_dropped(tmp_path):
    pages = []
    for i, topic in enumerate(["组织建设", "队伍建设", "制度建设"], 1):
        pages.append(
            ["某某县委办公室文件", f"{'一二三'[i - 1]}、{topic}", f"{topic}是基层党建的重要内容。", "各单位要高度重视。",
             "要结合实际抓好落实。", f"第 {i} 页 共 3 页"]
        )
    p = tmp_path / "running.pdf"
    _make_pdf(p, pages)
    doc = load_file(p)
    assert "某某县委办公室文件" not in doc.text and "共 3 页" not in doc.text
    assert "一、组织建设" in doc.clean and "三、制度建设" in doc.clean


def test_html_source_line_breaks_inside_chinese_text(tmp_path):
    p = tmp_path / "wrapped.html"
    p.write_text("<html><body><h1>标题</h1><p>党的基层组织\n    建设扎实推进，\n覆盖面扩大。 Next\nline.</p></body></html>", encoding="utf-8")
    doc = load_file(p)
    assert doc.clean == "党的基层组织建设扎实推进，覆盖面扩大。 Next line."


def test_same_relative_names_in_two_folders_get_distinct_ids(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "report.txt").write_text(SIMP, encoding="utf-8")
    docs, failures = load_paths([tmp_path / "a", tmp_path / "b"])
    assert not failures
    assert [d.doc_id for d in docs] == ["report", "b/report"]
    assert [d.doc_id for d in load_paths([tmp_path / "a", tmp_path / "b"])[0]] == ["report", "b/report"]


def test_web_page_saved_as_txt_is_read_as_html(tmp_path):
    p = tmp_path / "page.txt"
    p.write_text(HTML.format(charset="utf-8"), encoding="utf-8")
    doc = load_file(p)
    assert doc.metadata["format"] == "html" and doc.title == "学习长沙经验 做好基层党建工作"
    assert "<p>" not in doc.clean and "不应出现" not in doc.clean


def test_stray_control_characters_are_dropped(tmp_path):
    p = tmp_path / "ctrl.txt"
    p.write_text(SIMP * 3000 + "党组织\x07建设\x1b。\n", encoding="utf-8")  # after the 64 KB sniffed head
    doc = load_file(p)
    assert doc.clean.endswith("党组织建设。")
