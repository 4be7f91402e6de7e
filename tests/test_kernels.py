"""rag.llm.kernels: which llama.cpp build runs, its self-test, and the forced fallback.

Fast tests cover the pure parts (CPU flags → build options, the recorded choice, activation in
a child process so this process's llama_cpp import is not disturbed). Slow tests run the real
self-test and a real answer through the portable build with `RAG_LLM_KERNELS=portable`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.llm import kernels
from rag.errors import ConfigError, RagError

CPUINFO = "processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma f16c bmi2 avx512f avx512dq avx512bw avx512vl avx512vbmi avx512_vnni amx_tile amx_int8\n"


def test_cpu_flags_and_extra_isa_never_include_amx():
    flags = kernels.cpu_flags(CPUINFO)
    assert {"avx512f", "amx_int8"} <= flags
    isa = kernels.extra_isa(flags)
    # AVX512 base + VBMI + VNNI; no BF16 flag in CPUINFO; AMX never
    assert isa == ["AVX512", "AVX512_VBMI", "AVX512_VNNI"]
    args = kernels.cmake_args(isa)
    assert "-DGGML_AMX_INT8=OFF" in args and "-DGGML_AMX_TILE=OFF" in args
    assert not any("AMX" in a and a.endswith("=ON") for a in args)
    assert "-DGGML_NATIVE=OFF" in args  # -march=native would enable AMX on such a host


def test_the_fast_build_finds_its_sibling_libraries_where_it_is_copied():
    # the libraries are copied out of a temporary build tree; a RUNPATH into that tree made
    # every fast build fail its self-test ("libggml.so.0: cannot open shared object file")
    args = kernels.cmake_args(["AVX512"])
    assert "-DCMAKE_INSTALL_RPATH=$ORIGIN" in args and "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON" in args


def test_a_kept_build_that_fails_its_self_test_is_rebuilt_once(tmp_path, monkeypatch):
    out = tmp_path / "llama" / "avx512"
    out.mkdir(parents=True)
    (out / "libllama.so").write_bytes(b"")  # kept from an earlier install, no longer loads
    monkeypatch.setattr(kernels, "llama_cpp_version", lambda: "0.3.36")
    monkeypatch.setattr(kernels, "cpu_flags", lambda *a: {"avx512f", "avx512bw", "avx512dq", "avx512vl"})
    monkeypatch.setattr(kernels.shutil, "which", lambda name: "/usr/bin/" + name)
    builds: list = []
    monkeypatch.setattr(kernels, "build", lambda md, isa, echo: builds.append(isa) or out)
    ok = {"ok": True, "prompt_tps": 100.0, "decode_tps": 20.0}
    broken = {"ok": False, "error": "libggml.so.0: cannot open shared object file"}
    probes = iter([ok, broken, ok, {**ok, "prompt_tps": 300.0}])  # portable, kept; portable, rebuilt
    monkeypatch.setattr(kernels, "probe", lambda model, lib: next(probes))
    state = kernels.install(tmp_path, tmp_path / "m.gguf", echo=lambda s: None)
    assert builds == [["AVX512"]]  # rebuilt exactly once
    assert state["chosen"] == "avx512"


def test_no_cpuinfo_means_nothing_to_build():
    assert kernels.cpu_flags("") == set()
    assert kernels.extra_isa(set()) == []


def _state(tmp_path: Path, chosen: str, version: str | None = None, lib: bool = True) -> Path:
    d = tmp_path / "llama"
    (d / chosen).mkdir(parents=True, exist_ok=True)
    if lib and chosen != kernels.PORTABLE:
        (d / chosen / "libllama.so").write_bytes(b"")
    (d / kernels.STATE_FILE).write_text(json.dumps({
        "chosen": chosen, "llama_cpp_version": version or kernels.llama_cpp_version(), "results": {},
    }), encoding="utf-8")
    return tmp_path


def test_chosen_lib_needs_matching_version_and_present_library(tmp_path):
    md = _state(tmp_path, "avx512-vnni")
    assert kernels.chosen_lib(md) == md / "llama" / "avx512-vnni"
    assert kernels.chosen_lib(_state(tmp_path / "a", "avx512-vnni", version="0.0.1")) is None  # upgraded bindings
    assert kernels.chosen_lib(_state(tmp_path / "b", "avx512-vnni", lib=False)) is None  # build removed
    assert kernels.chosen_lib(_state(tmp_path / "c", kernels.PORTABLE)) is None
    assert kernels.chosen_lib(tmp_path / "none") is None  # never installed


def test_damaged_state_file_means_portable(tmp_path):
    (tmp_path / "llama").mkdir()
    (tmp_path / "llama" / kernels.STATE_FILE).write_text("{not json", encoding="utf-8")
    assert kernels.load_state(tmp_path) is None
    assert kernels.chosen_lib(tmp_path) is None


def test_unknown_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="llm.kernels"):
        kernels.activate("fastest", None)


def _activate_in_child(models_dir: Path, mode: str, extra_env: dict | None = None) -> dict:
    code = (
        "import json, os, sys; from rag.llm import kernels; "
        f"name = kernels.activate({mode!r}, {str(models_dir)!r}); "
        "print(json.dumps({'name': name, 'path': os.environ.get('LLAMA_CPP_LIB_PATH')}))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("LLAMA_CPP_LIB_PATH", "_RAG_KERNELS_SET")}
    env.update(extra_env or {})
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                       cwd=Path(__file__).resolve().parent.parent)
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_activate_points_llama_cpp_at_the_chosen_build_and_portable_overrides(tmp_path):
    md = _state(tmp_path, "avx512-vnni")
    auto = _activate_in_child(md, "auto")
    assert auto == {"name": "avx512-vnni", "path": str(md / "llama" / "avx512-vnni")}
    assert _activate_in_child(md, "portable") == {"name": "portable", "path": None}
    # a user's own LLAMA_CPP_LIB_PATH is left alone
    own = _activate_in_child(md, "auto", {"LLAMA_CPP_LIB_PATH": "/opt/my-llama"})
    assert own == {"name": "custom", "path": "/opt/my-llama"}


def test_config_reads_the_fallback_switch_from_the_environment():
    from rag.config import load_config

    assert load_config(env={"RAG_LLM_KERNELS": "portable"}).llm.kernels == "portable"
    assert load_config(env={}).llm.kernels == "auto"


# ---------------------------------------------------------------------------- real model


def _installed_model() -> Path:
    from rag.config import load_config
    from rag.llm.install import model_path

    cfg = load_config(env={k: v for k, v in os.environ.items() if k in ("RAG_HOME", "RAG_MODELS_DIR")})
    return model_path("qwen2.5-0.5b", cfg.paths.models_dir)  # CI installs it: missing is a failure


@pytest.mark.slow
def test_self_test_passes_on_portable_and_reports_a_broken_build_without_crashing(tmp_path):
    model = _installed_model()
    good = kernels.probe(model, None)
    assert good["ok"], good
    assert good["prompt_tps"] > 0 and good["decode_tps"] > 0 and "AVX2 = 1" in good["system_info"]
    broken = tmp_path / "llama" / "broken"
    broken.mkdir(parents=True)
    (broken / "libllama.so").write_bytes(b"not a shared library")
    bad = kernels.probe(model, broken)
    assert not bad["ok"] and "crashed" in bad["error"]
    state = kernels.choose(tmp_path, model, broken, echo=lambda m: None)
    assert state["chosen"] == kernels.PORTABLE  # the broken build is never chosen
    assert kernels.load_state(tmp_path)["results"]["broken"]["ok"] is False


@pytest.mark.slow
def test_forced_fallback_still_answers(tmp_path):
    """RAG_LLM_KERNELS=portable: a real answer from pip's portable build, whatever was chosen."""
    model = _installed_model()
    code = (
        "from rag.config import load_config; from rag.llm.backends import get_chat_model; from rag.llm.kernels import running; "
        "from langchain_core.messages import HumanMessage; import json; cfg = load_config(); "
        "llm = cfg.llm; llm.model = 'qwen2.5-0.5b'; llm.max_tokens = 16; llm.temperature = 0.0; "
        "m = get_chat_model(llm, cfg.paths.models_dir); "
        "t = m.invoke([HumanMessage('资料：南马路小学始建于1951年。问题：南马路小学始建于哪一年？只回答年份。')]).content; "
        "print(json.dumps({'kernels': running(), 'text': t}, ensure_ascii=False))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("LLAMA_CPP_LIB_PATH", "_RAG_KERNELS_SET")}
    env["RAG_LLM_KERNELS"] = "portable"
    env["RAG_MODELS_DIR"] = str(model.parent.parent)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                       cwd=Path(__file__).resolve().parent.parent)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["kernels"] == "portable"
    assert "1951" in out["text"]


def test_a_build_that_cannot_be_fetched_or_compiled_keeps_the_portable_build(tmp_path, monkeypatch):
    """The fast build is an optimisation: `rag models install` must not fail because of it."""
    monkeypatch.setattr(kernels, "extra_isa", lambda flags: ["AVX512"])
    monkeypatch.setattr(kernels, "build", lambda *a, **k: (_ for _ in ()).throw(RagError("cmake failed")))
    probed = []
    monkeypatch.setattr(kernels, "probe", lambda model, lib, timeout=0: probed.append(lib) or
                        {"ok": True, "prompt_tps": 50.0, "decode_tps": 20.0, "answer": "1951年"})
    lines = []
    state = kernels.install(tmp_path, tmp_path / "m.gguf", echo=lines.append)
    assert state["chosen"] == kernels.PORTABLE and probed == [None]
    assert any("keeping the portable build" in ln for ln in lines)
