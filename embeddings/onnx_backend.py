"""ONNX Runtime path for the embedding model: exported once at install time, run at query time.

Why: on this class of machine (2 CPU cores) fp32 torch encodes ≈6 passages/s at ≈340 tokens;
ONNX Runtime with fused attention/LayerNorm kernels and int8 dynamic quantisation of the
matrix multiplications is markedly faster (numbers in benchmarks/results/embeddings.md).

The export wraps the BERT encoder together with mean pooling and L2 normalisation, so the graph
takes `input_ids`, `attention_mask` and returns unit `sentence_embedding` rows — the same
computation as the sentence-transformers folder (Transformer → mean Pooling → Normalize).

Files, inside the model folder: `onnx/model_int8.onnx` (dynamic int8 weights; the fp32 export
`onnx/model.onnx` is kept only if int8 fails the check), `onnx/onnx_info.json` (which file the
`auto` backend uses, and the cosine of each against the fp32 torch model, measured at export
time). The export is atomic (temp folder,
then rename) and skipped when present.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

ONNX_VERSION = 1  # bump to re-export on the next `rag models install`
MIN_COSINE = 0.99  # a quantised file that disagrees more with fp32 torch is not used


def available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def read_info(folder: str | Path) -> dict | None:
    try:
        return json.loads((Path(folder) / "onnx" / "onnx_info.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def find_onnx_model(folder: str | Path) -> Path | None:
    """The ONNX file the `auto`/`onnx` backend should run, or None when there is no valid export."""
    info = read_info(folder)
    if not info or info.get("version") != ONNX_VERSION:
        return None
    p = Path(folder) / "onnx" / info.get("default", "model.onnx")
    return p if p.is_file() else None


class OnnxBackend:
    """Tokenise with the folder's tokenizer.json (HF `tokenizers`), run the pooled graph."""

    def __init__(self, folder: str | Path, model_file: str | Path, max_seq_length: int, threads: int):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        pad_id = self.tokenizer.token_to_id("<pad>")
        self.tokenizer.enable_truncation(max_length=max_seq_length)
        self.tokenizer.enable_padding(pad_id=pad_id if pad_id is not None else 0,
                                      pad_token="<pad>" if pad_id is not None else "[PAD]")
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        # No busy-waiting between ops: on a shared or oversubscribed machine spinning threads burn
        # CPU others need (measured: ~15% more CPU per passage under load, no gain idle).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(model_file), so, providers=["CPUExecutionProvider"])
        self.model_file = Path(model_file)
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def embed(self, texts: list[str]) -> np.ndarray:
        encs = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        (out,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
        return out.astype(np.float32, copy=False)


# ---------------------------------------------------------------------------------------------
# export (install time)

CHECK_TEXTS = [
    "query: 今天天气怎么样？",
    "passage: 台湾大学是台湾第一所综合性大学，前身为日治时期的台北帝国大学，校园位于台北市大安区。",
    "query: How much protein should a female eat per day?",
    "passage: 国务院总理在政府工作报告中提出，今年国内生产总值增长预期目标为百分之五左右，"
    "城镇新增就业一千二百万人以上，城镇调查失业率百分之五点五左右。",
    "passage: 1786年2月2日，亚洲协会在加尔各答举行。会中，威廉·琼斯发表了下面这段著名的观察：梵语尽管非常古老，构造却精妙绝伦。",
]


def _export_fp32(folder: Path, out_file: Path) -> None:
    import torch
    from transformers import AutoModel

    # eager attention traces into plain MatMul/Softmax, which ORT fuses into its attention kernel
    from embeddings.base import quiet_transformers as _quiet_transformers

    with _quiet_transformers():
        model = AutoModel.from_pretrained(str(folder), attn_implementation="eager", local_files_only=True).eval()

    class Pooled(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            h = self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            msk = attention_mask.unsqueeze(-1).to(h.dtype)
            v = (h * msk).sum(1) / msk.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(v, p=2.0, dim=-1)

    ids = torch.tensor([[0, 6, 124084, 2, 1], [0, 6, 124084, 33, 2]], dtype=torch.long)
    mask = (ids != 1).long()
    with torch.inference_mode():
        torch.onnx.export(
            Pooled(model).eval(), (ids, mask), str(out_file),
            input_names=["input_ids", "attention_mask"], output_names=["sentence_embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                          "sentence_embedding": {0: "batch"}},
            opset_version=17, dynamo=False,  # the TorchScript exporter: no onnxscript dependency
        )


def _quantize_int8(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Only the MatMuls (weights per output channel); embeddings (Gather) stay fp32: quantising the
    # 250k-row table saves disk, not time, and costs accuracy on rare pieces.
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"])


def _cosines(folder: Path, files: list[Path], threads: int) -> dict[str, float]:
    """Lowest cosine of each ONNX file against fp32 torch (sentence-transformers) on CHECK_TEXTS."""
    from sentence_transformers import SentenceTransformer

    from embeddings.base import quiet_transformers as _quiet_transformers

    with _quiet_transformers():
        st = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    ref = st.encode(CHECK_TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    del st
    out = {}
    for f in files:
        b = OnnxBackend(folder, f, 512, threads)
        out[f.name] = round(float(np.min(np.sum(b.embed(CHECK_TEXTS) * ref, axis=1))), 6)
    return out


def ensure_onnx_export(folder: str | Path, log: Callable[[str], None] = print, force: bool = False,
                       keep_fp32: bool = False) -> Path | None:
    """Export `folder` (a sentence-transformers BERT folder) to ONNX fp32 + int8 unless done.
    Returns the file the `auto` backend will use, or None when the export is impossible here
    (onnx/onnxruntime missing), in which case the torch backend is used. The fp32 file (470 MB)
    is kept only when it is the one used (int8 failed the cosine check) or `keep_fp32`."""
    folder = Path(folder)
    if not force and find_onnx_model(folder) is not None:
        return find_onnx_model(folder)
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        log(f"onnx export skipped ({', '.join(missing)} not installed): the torch backend will be used")
        return None
    t0 = time.time()
    log(f"{folder.name}: exporting to ONNX (fp32, then int8) …")
    tmp = Path(tempfile.mkdtemp(prefix=".onnx-building-", dir=folder))
    try:
        fp32, int8 = tmp / "model.onnx", tmp / "model_int8.onnx"
        _export_fp32(folder, fp32)
        _quantize_int8(fp32, int8)
        cos = _cosines(folder, [fp32, int8], threads=os.cpu_count() or 1)
        default = "model_int8.onnx" if cos["model_int8.onnx"] >= MIN_COSINE else "model.onnx"
        if default != "model.onnx" and not keep_fp32:
            fp32.unlink()
        info = {"version": ONNX_VERSION, "default": default, "min_cosine_vs_torch_fp32": cos,
                "opset": 17, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (tmp / "onnx_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        for p in [tmp, *tmp.iterdir()]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        target = folder / "onnx"
        if target.exists():
            old = folder / f".onnx-old-{os.getpid()}"
            os.replace(target, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"{folder.name}: ONNX ready in {time.time() - t0:.0f}s (cosine vs fp32 torch: {cos}; default {default})")
    return folder / "onnx" / default
