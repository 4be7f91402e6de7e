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


class BackendError(RagError):
    """The LLM server (the openai backend) failed: unreachable, too slow, unknown model, refused
    key, or the connection broke off during an answer (rag.llm.openai_backend)."""


class IndexDamaged(IndexMissing):
    """A file of an index version is missing, truncated or altered (its size or checksum differs
    from what the version recorded, or it cannot be parsed). `file` names it relative to the
    version folder, `version` is the folder's name."""

    def __init__(self, message: str, file: str = "", version: str = ""):
        super().__init__(message)
        self.file = file
        self.version = version


# what each kind of failure means, for a Chinese interface (the detail stays as raised: it names
# files, keys and commands, which are the same in both languages)
_ZH = (
    ("IndexDamaged", "索引文件损坏（可运行 rag index --rebuild 重建）"),
    ("IndexMissing", "知识库还没有可用的索引"),
    ("ModelMismatch", "索引所用的嵌入模型与当前设置不同"),
    ("ModelNotInstalled", "模型尚未安装"),
    ("ConfigError", "设置有误"),
    ("BackendError", "模型服务出错"),
    ("IngestError", "文件无法读取"),
)


def in_chinese(e: BaseException) -> str:
    """A one-line message for a Chinese interface: what went wrong in Chinese, then the detail.

    >>> in_chinese(ModelNotInstalled("local model 'qwen2.5-1.5b' is not installed"))
    "模型尚未安装：local model 'qwen2.5-1.5b' is not installed"
    >>> in_chinese(RagError("回答中断（没有收到最终结果）"))  # already Chinese: unchanged
    '回答中断（没有收到最终结果）'
    """
    detail = " ".join(str(e).split())
    if any("\u4e00" <= ch <= "\u9fff" for ch in detail[:40]):
        return detail
    names = {c.__name__ for c in type(e).__mro__}
    lead = next((zh for name, zh in _ZH if name in names), "出错")
    return f"{lead}：{detail}" if detail else lead
