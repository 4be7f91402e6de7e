"""Every worked example in a docstring of rag/, embeddings/ and ui/ runs (the pure functions'
docstrings are their first tests: fusion, metrics, claim checks, citation parsing, …)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _modules() -> list[str]:
    names = []
    for pkg in ("rag", "embeddings", "ui"):
        names.append(pkg)
        for m in pkgutil.walk_packages([str(ROOT / pkg)], prefix=f"{pkg}."):
            if not m.name.endswith("__main__"):
                names.append(m.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0, f"{res.failed} of {res.attempted} examples failed in {name}"


def test_the_pure_stages_have_worked_examples():
    # the modules whose functions the style guide asks to carry a worked example
    for name in ("rag.retrieve.fusion", "rag.evaluate.metrics", "rag.cite.claims", "rag.text.markers", "rag.cite.review", "rag.config"):
        assert doctest.testmod(importlib.import_module(name)).attempted > 0, name
