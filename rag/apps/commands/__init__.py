"""Subcommands of `rag`. Shared option helpers live here."""

from __future__ import annotations

import argparse
from typing import Any

from rag.config import INDEX_BACKENDS, Config, load_config


def add_common(p: argparse.ArgumentParser) -> None:
    """Options every subcommand takes."""
    p.add_argument("--config", metavar="FILE", help="TOML config file (else $RAG_CONFIG or ./rag.toml)")
    p.add_argument("--kb", metavar="NAME", help="knowledge base name (default: seeds)")
    p.add_argument("--backend", choices=INDEX_BACKENDS, help="index backend (default from config: index.backend)")


def resolve_config(args: argparse.Namespace, **groups: dict[str, Any]) -> Config:
    """Config from file < RAG_* env < the given CLI values (None = not given)."""
    overrides: dict[str, dict[str, Any]] = {g: {k: v for k, v in vals.items() if v is not None} for g, vals in groups.items()}
    if getattr(args, "kb", None):
        overrides.setdefault("paths", {})["kb"] = args.kb
    if getattr(args, "backend", None):
        overrides.setdefault("index", {})["backend"] = args.backend
    return load_config(getattr(args, "config", None), overrides)
