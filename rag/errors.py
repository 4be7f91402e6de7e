"""User-facing errors: each carries a message a person can act on. The CLI, the REST API and
the web chat show the message (never a stack trace); anything else is a bug."""


class RagError(Exception):
    """Base class: an expected failure with a clear, actionable message."""


class IngestError(RagError):
    """A file could not be read or decoded (one bad file never stops the others)."""


class IndexMissing(RagError):
    """No usable index at the given place (not built yet, or only a half-written one)."""


class ModelMismatch(RagError):
    """The index was built with another embedding model than the one configured."""


class ModelNotInstalled(RagError):
    """A model is not in the model cache; `rag models install` builds it."""


class ConfigError(RagError):
    """A setting is invalid."""


class IndexDamaged(IndexMissing):
    """A file of an index version is missing, truncated or altered (its size or checksum differs
    from what the version recorded, or it cannot be parsed). `file` names it relative to the
    version folder, `version` is the folder's name."""

    def __init__(self, message: str, file: str = "", version: str = ""):
        super().__init__(message)
        self.file = file
        self.version = version
