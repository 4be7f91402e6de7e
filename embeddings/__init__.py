"""Embeddings: model install (built from packages, no hub), loading, and the vector cache.

`load_encoder(cfg)` returns the process-wide encoder for an `EmbedConfig` (loaded once).
The name "fake" (or "fake-<dim>") gives the deterministic test encoder.
"""

from embeddings.base import Encoder, FakeEncoder

__all__ = ["Encoder", "FakeEncoder", "load_encoder"]


_LAZY = {  # light names importable from the package without pulling in their modules up front
    "VectorCache": "embeddings.cache",
    "install_e5": "embeddings.install",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'embeddings' has no attribute {name!r}")


def load_encoder(cfg=None, models_dir=None):
    """Process-wide encoder for `cfg` (an EmbedConfig or a model name)."""
    from embeddings.encoder import load_encoder as _load  # heavy imports stay lazy

    return _load(cfg, models_dir=models_dir)
