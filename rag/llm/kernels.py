"""Which llama.cpp kernels run: pip's portable build, or one built for this CPU and self-tested.

pip's llama-cpp-python is compiled for a portable x86-64-v3 CPU (AVX2/FMA/F16C, see
scripts/run.sh): the `-march=native` build crashed with a general protection fault on a host
that advertised AMX, and it is the one build that runs on every machine CI may land on. On
the CPUs here (AVX-512 with VNNI/BF16) that build runs at about half their speed, so
`rag models install` also builds the *same* llama.cpp source (the sdist of the installed
llama-cpp-python version) for the instruction sets this CPU advertises — never AMX — into
`{models_dir}/llama/<tag>/`, and self-tests both builds, each in a child process: a real
prompt evaluation and a multi-token greedy decode that must answer a copy question right. A
build that crashes (SIGILL, GPF) or computes garbage only kills its child. The faster build
that passes is recorded in `{models_dir}/llama/kernels.json` with the measured tokens/s, and
`activate()` points llama-cpp-python at it through its own `LLAMA_CPP_LIB_PATH` hook before
`llama_cpp` is first imported.

`llm.kernels` (RAG_LLM_KERNELS): ``auto`` runs the recorded choice; ``portable`` forces pip's
build (the fallback, also what runs when no fast build passed its self-test).

Deliberate compromise: the library set is switched per process (llama-cpp-python loads
`libllama.so` once, at import), so benchmarks that compare both run one child per build; and
the fast build is a plain CMake build of the vendored source rather than a second wheel,
because only the shared libraries differ and pip cannot hold two builds of one package.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable

from rag.errors import ConfigError, RagError

from rag.config import KERNELS as MODES  # noqa: E402 - one home: rag.config
PORTABLE = "portable"
STATE_FILE = "kernels.json"
# the portable flags pip's build uses (scripts/run.sh); the fast build adds to them
BASE_ARGS = (
    "-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON",
    "-DGGML_BMI2=ON", "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF",
)
# /proc/cpuinfo flag(s) → ggml option; AVX-512 needs the F/BW/DQ/VL subset ggml compiles for
ISA_FLAGS = (
    (("avx512f", "avx512bw", "avx512dq", "avx512vl"), "AVX512"),
    (("avx512vbmi",), "AVX512_VBMI"),  # cpuinfo spells it without the underscore
    (("avx512_vnni",), "AVX512_VNNI"),
    (("avx512_bf16",), "AVX512_BF16"),
    (("avx_vnni",), "AVX_VNNI"),
)
# the self-test: a copy question whose answer the prompt holds, so wrong kernels show as a wrong answer
PROBE_FACT = "南马路小学始建于1951年，现有教职工68人。"
PROBE_ANSWER = "1951"
PROBE_TIMEOUT_S = 300


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def extra_isa(flags: set[str]) -> list[str]:
    """ggml instruction-set options this CPU supports beyond the portable build's AVX2.

    AMX is never among them (the crash the portable build avoids); AVX-512 extensions only
    count when the AVX-512 base ggml compiles for is there.

    >>> extra_isa({"avx2", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni", "amx_int8"})
    ['AVX512', 'AVX512_VNNI']
    >>> extra_isa({"avx2", "avx512_vnni"})  # no AVX-512 base: its extensions do not count
    []
    >>> extra_isa({"avx2", "avx_vnni"})
    ['AVX_VNNI']
    """
    have = [opt for need, opt in ISA_FLAGS if all(f in flags for f in need)]
    if "AVX512" not in have:
        have = [o for o in have if not o.startswith("AVX512")]
    return have


def build_tag(isa: list[str]) -> str:
    """A folder name for a build with these extra instruction sets.

    >>> build_tag(["AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16"])
    'avx512-vbmi-vnni-bf16'
    >>> build_tag(["AVX_VNNI"])
    'avx-vnni'
    """
    parts = [o.lower().replace("avx512_", "") if o != "AVX512" else "avx512" for o in isa]
    return "-".join(p.replace("_", "-") for p in parts)


def cmake_args(isa: list[str]) -> list[str]:
    """CMake options for the fast build: the portable set plus `isa`, shared libraries only.

    >>> [a for a in cmake_args(["AVX512"]) if "AVX512" in a or "AMX_INT8" in a]
    ['-DGGML_AMX_INT8=OFF', '-DGGML_AVX512=ON']
    """
    return [
        "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=ON", "-DLLAMA_CURL=OFF",
        "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=OFF",
        "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_COMMON=OFF",
        # the libraries are copied out of a temporary build tree: each must find its siblings
        # ($ORIGIN), not the build tree it was linked in (a RUNPATH into the deleted tree made
        # every fast build fail its self-test with "libggml.so.0: cannot open shared object file")
        "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON", "-DCMAKE_INSTALL_RPATH=$ORIGIN",
        *BASE_ARGS, *(f"-DGGML_{o}=ON" for o in isa),
    ]


def llama_cpp_version() -> str | None:
    try:
        return md.version("llama-cpp-python")
    except md.PackageNotFoundError:
        return None


def kernels_dir(models_dir: str | Path) -> Path:
    return Path(models_dir).expanduser() / "llama"


def load_state(models_dir: str | Path) -> dict | None:
    """The recorded choice (kernels.json), or None when there is none or it cannot be read."""
    p = kernels_dir(models_dir) / STATE_FILE
    try:
        state = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _write_state(models_dir: str | Path, state: dict) -> None:
    d = kernels_dir(models_dir)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, d / STATE_FILE)


def chosen_lib(models_dir: str | Path, state: dict | None = None) -> Path | None:
    """The fast build's folder if it is recorded as chosen, matches the installed
    llama-cpp-python and is present; else None (the portable build runs)."""
    state = load_state(models_dir) if state is None else state
    if not state or state.get("chosen", PORTABLE) == PORTABLE:
        return None
    if state.get("llama_cpp_version") != llama_cpp_version():
        return None  # llama-cpp-python was upgraded: its Python bindings may not match the old libraries
    lib = kernels_dir(models_dir) / str(state["chosen"])
    return lib if (lib / "libllama.so").is_file() else None


def activate(mode: str = "auto", models_dir: str | Path | None = None) -> str:
    """Point llama-cpp-python at the kernels to run, before `llama_cpp` is imported.

    Returns the name of the set that runs in this process ("portable", a build tag, or
    "custom" for a user's own LLAMA_CPP_LIB_PATH). Once llama_cpp is imported the choice is
    fixed for the process; a later call only reports it.
    """
    if mode not in MODES:
        raise ConfigError(f"llm.kernels = {mode!r}: choose one of {', '.join(MODES)}")
    if "llama_cpp" in sys.modules:
        return running()
    if os.environ.get("LLAMA_CPP_LIB_PATH") and not os.environ.get("_RAG_KERNELS_SET"):
        return "custom"
    lib = chosen_lib(models_dir) if (mode == "auto" and models_dir is not None) else None
    if lib is None:
        if os.environ.pop("_RAG_KERNELS_SET", None):
            os.environ.pop("LLAMA_CPP_LIB_PATH", None)
        return PORTABLE
    os.environ["LLAMA_CPP_LIB_PATH"] = str(lib)
    os.environ["_RAG_KERNELS_SET"] = "1"  # marks the variable as ours, so `portable` may drop it
    return lib.name


def running() -> str:
    """The kernel set of the llama_cpp imported in this process ("" if none is)."""
    mod = sys.modules.get("llama_cpp.llama_cpp")
    if mod is None:
        return ""
    base = Path(str(getattr(mod, "_base_path", "")))
    if base.parent.name == "llama" and (base.parent / STATE_FILE).exists():
        return base.name
    return PORTABLE if base.name == "lib" and base.parent.name == "llama_cpp" else "custom"


# ------------------------------------------------------------------------------------ build


def _fetch_source(version: str, work: Path) -> Path:
    """The vendored llama.cpp of llama-cpp-python `version`, from its PyPI sdist."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         f"llama-cpp-python=={version}", "-d", str(work), "-q"],
        check=True,
    )
    sdist = next(work.glob("llama_cpp_python-*.tar.gz"))
    with tarfile.open(sdist) as tf:
        tf.extractall(work, filter="data")
    src = next(work.glob("llama_cpp_python-*/vendor/llama.cpp"))
    return src


def build(models_dir: str | Path, isa: list[str], echo: Callable[[str], None] = print) -> Path:
    """Compile libllama/libggml for `isa` into `{models_dir}/llama/<tag>` (atomic rename)."""
    version = llama_cpp_version()
    if version is None:
        raise RagError("llama-cpp-python is not installed; nothing to build kernels for")
    out = kernels_dir(models_dir) / build_tag(isa)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llama-build-", dir=out.parent) as tmp:
        work = Path(tmp)
        echo(f"fetching the llama.cpp source of llama-cpp-python {version}")
        src = _fetch_source(version, work)
        bdir = work / "build"
        echo(f"compiling llama.cpp for {', '.join(isa)} (no AMX), ~6 min on 2 cores")
        log_path = work / "build.log"
        with open(log_path, "w") as logf:
            for cmd in (
                ["cmake", "-S", str(src), "-B", str(bdir), *cmake_args(isa)],
                ["cmake", "--build", str(bdir), "-j", str(os.cpu_count() or 2), "--target", "llama"],
            ):
                r = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT)
                if r.returncode:
                    tail = log_path.read_text(errors="replace")[-1500:]
                    raise RagError(f"building llama.cpp failed ({' '.join(cmd[:2])}):\n{tail}")
        staged = work / "lib"
        staged.mkdir()
        for so in (bdir / "bin").glob("lib*.so*"):
            shutil.copy2(so, staged / so.name, follow_symlinks=False)
        if not (staged / "libllama.so").exists():
            raise RagError(f"building llama.cpp produced no libllama.so in {bdir / 'bin'}")
        if out.exists():
            shutil.rmtree(out)
        os.replace(staged, out)
    return out


# ------------------------------------------------------------------------------------ self-test


def probe(model_path: str | Path, lib: Path | None, timeout: float = PROBE_TIMEOUT_S) -> dict:
    """Self-test one build in a child process; never raises for a build that crashes.

    Returns {"ok", "prompt_tps", "decode_tps", "answer", "system_info"} or {"ok": False,
    "error": ...}.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("LLAMA_CPP_LIB_PATH", "_RAG_KERNELS_SET")}
    if lib is not None:
        env["LLAMA_CPP_LIB_PATH"] = str(lib)
    cmd = [sys.executable, "-m", "rag.llm.kernels", "probe", str(model_path)]
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"self-test did not finish in {timeout:.0f} s"}
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        why = f"signal {-r.returncode}" if r.returncode < 0 else f"exit {r.returncode}"
        return {"ok": False, "error": f"self-test crashed ({why}): {r.stderr.strip()[-300:]}"}
    res = json.loads(lines[-1])
    res["ok"] = PROBE_ANSWER in res.get("answer", "")
    if not res["ok"]:
        res["error"] = f"wrong self-test answer {res.get('answer', '')!r}"
    return res


def _probe_main(model_path: str) -> None:
    """Child side of `probe`: load, answer the copy question, time a forced 64-token decode."""
    import llama_cpp

    n = max(1, os.cpu_count() or 1)
    llm = llama_cpp.Llama(model_path=model_path, n_ctx=2048, n_threads=n, n_threads_batch=n, n_batch=512, verbose=False)
    msgs = [
        {"role": "system", "content": "根据资料回答，只输出答案。"},
        {"role": "user", "content": f"资料：{PROBE_FACT}\n问题：南马路小学始建于哪一年？"},
    ]
    answer = llm.create_chat_completion(messages=msgs, temperature=0.0, max_tokens=16)["choices"][0]["message"]["content"]
    llm.reset()
    # speed: ≈400 fresh prompt tokens, then 64 decoded tokens with end-of-text suppressed
    prompt = ("资料：" + PROBE_FACT * 24 + "\n请复述资料：").encode()
    stop_ids = {llm.token_eos(), *llm.tokenize(b"<|im_end|>", add_bos=False, special=True)}
    n_prompt = len(llm.tokenize(prompt))
    t0 = time.perf_counter()
    first = None
    n_out = 0
    for _ in llm.create_completion(prompt.decode(), max_tokens=64, temperature=0.0, stream=True,
                                   logit_bias={t: -1e9 for t in stop_ids}):
        n_out += 1
        first = first or time.perf_counter()
    t1 = time.perf_counter()
    print(json.dumps({
        "answer": answer.strip(),
        "prompt_tokens": n_prompt,
        "prompt_tps": round(n_prompt / (first - t0), 1),
        "decode_tps": round((n_out - 1) / (t1 - first), 1) if n_out > 1 else 0.0,
        "system_info": llama_cpp.llama_print_system_info().decode().strip(),
    }, ensure_ascii=False), flush=True)


def choose(models_dir: str | Path, model_path: str | Path, fast: Path | None,
           echo: Callable[[str], None] = print, cpu_isa: list[str] | None = None) -> dict:
    """Self-test the portable build and `fast`, record the faster one that passes."""
    results = {PORTABLE: probe(model_path, None)}
    if fast is not None:
        results[fast.name] = probe(model_path, fast)
    for name, r in results.items():
        if r["ok"]:
            echo(f"  {name}: prompt {r['prompt_tps']} tok/s, decode {r['decode_tps']} tok/s")
        else:
            echo(f"  {name}: failed its self-test: {r['error']}")
    chosen = PORTABLE
    if fast is not None and results[fast.name]["ok"]:
        f, p = results[fast.name], results[PORTABLE]
        # a fast build that works is kept unless it measures slower on both axes
        if not p["ok"] or f["prompt_tps"] >= p["prompt_tps"] or f["decode_tps"] >= p["decode_tps"]:
            chosen = fast.name
    state = {
        "chosen": chosen,
        "llama_cpp_version": llama_cpp_version(),
        "model": Path(model_path).name,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "results": results,
        "cpu_isa": cpu_isa if cpu_isa is not None else extra_isa(cpu_flags()),
    }
    _write_state(models_dir, state)
    return state


def _try_build(models_dir: str | Path, isa: list[str], echo: Callable[[str], None]) -> Path | None:
    """`build`, or None (said why) when it fails: the fast build is an optimisation, and failing
    to fetch or compile it never fails the install."""
    try:
        return build(models_dir, isa, echo)
    except (RagError, OSError, subprocess.CalledProcessError, StopIteration) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        echo(f"could not build llama.cpp for this CPU ({first}); keeping the portable build")
        return None


def install(models_dir: str | Path, model_path: str | Path | None, force: bool = False,
            echo: Callable[[str], None] = print) -> dict | None:
    """Build (once) and self-test the fast kernels; idempotent like the model install."""
    version = llama_cpp_version()
    if version is None:
        echo("llama-cpp-python is not installed: no kernels to build")
        return None
    if model_path is None:
        echo("no local LLM installed: the kernels cannot be self-tested; the portable build runs")
        return None
    state = load_state(models_dir)
    isa = extra_isa(cpu_flags())
    if state and state.get("llama_cpp_version") == version and not force and state.get("cpu_isa") == isa:
        lib = chosen_lib(models_dir, state)
        if state.get("chosen") == PORTABLE or lib is not None:
            echo(f"llama.cpp kernels: {state['chosen']} (measured {state.get('measured_at', '?')}; --force re-measures)")
            return state
    fast = None
    if not isa:
        echo("this CPU has no instruction set beyond the portable build's AVX2: keeping the portable build")
    elif shutil.which("cmake") is None:
        echo("cmake is not installed: keeping the portable llama.cpp build")
    else:
        out = kernels_dir(models_dir) / build_tag(isa)
        reused = (out / "libllama.so").is_file() and not force
        fast = out if reused else _try_build(models_dir, isa, echo)
    echo("self-testing the llama.cpp builds in child processes")
    state = choose(models_dir, model_path, fast, echo, cpu_isa=isa)
    if fast is not None and reused and state["chosen"] == PORTABLE and not state["results"][fast.name]["ok"]:
        # a build kept from an earlier install that no longer loads (an older build's broken
        # RUNPATH, a changed system library) is rebuilt once rather than kept failing
        echo("the kept llama.cpp build failed its self-test: rebuilding it")
        fast = _try_build(models_dir, isa, echo)
        if fast is not None:
            state = choose(models_dir, model_path, fast, echo, cpu_isa=isa)
    echo(f"llama.cpp kernels: {state['chosen']}")
    return state


if __name__ == "__main__":  # child process of `probe`
    if len(sys.argv) == 3 and sys.argv[1] == "probe":
        _probe_main(sys.argv[2])
    else:
        sys.exit("usage: python -m rag.llm.kernels probe MODEL.gguf")
