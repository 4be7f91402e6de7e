"""The long-lived objects a front end keeps between requests: assistants and knowledge bases.

Both front ends — the web chat (ui/) and the REST API (rag.apps.api) — answer every request of a
knowledge base with the same `rag.answer.assistant.Assistant`, because opening one loads an index (and, on
first use, an embedding model). `AssistantCache` is the one cache of them: thread-safe, one entry
per (KB name, variant) — the web chat's variant is the model name, the API has none — filled by a
`build(kb_name, variant, previous)` function that each front end passes in.

An entry is rebuilt when its knowledge base's index version is no longer the one it was built
on (an upload, a delete or a reindex here or in another process), or after `invalidate(kb_name)`:
an Assistant keeps the original text of recent documents for exact quotes, and those texts
belong to one version. `previous` (the stale Assistant) lets `build` keep its KnowledgeBase, so
a rebuild costs no index load; the llama.cpp model is process-wide anyway (rag.llm.backends.load_llama).

`Services` is the web chat's set of handles on top of it: opened KnowledgeBases by name (shared
by answering and the document admin, so an upload is seen by the next question), the uploads
folder, and the KB admin operations the Documents tab calls (`index_uploads`, `delete_document`,
`create_kb`); storing and indexing an upload itself is rag.index.uploads'.

Deliberate compromises:
- The version is read from the KB object (`kb.version`), which a KnowledgeBase refreshes from
  disk at most once a second during a search. After another process publishes, the first
  question may still be answered by the old Assistant (its search already reads the new index);
  the next question gets a rebuilt one. Reading the disk on every request would cost more.
- A builder runs under a per-key lock (two first requests for one KB open it once) but not the
  cache's lock, so a slow open of one KB holds up no other KB.
- KB names follow the one rule of rag.limits (`KB_NAME`, `Limits.kb_name_chars`) that the API
  and the CLI check too; only the message differs (Chinese, for the chat).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

from rag.config import Config
from rag.errors import ConfigError

from rag.limits import LIMITS, valid_kb_name  # the one KB-name rule and length (API, CLI, chat)
_STALE = object()  # the version token of an invalidated entry: never equal to a real one

Build = Callable[[str, str, Any], Any]  # (kb_name, variant, previous Assistant or None) → Assistant


def index_version(assistant: Any) -> Hashable:
    """The index version an Assistant's KB serves (its folder path), or None when the KB does
    not say (test stand-ins): such an entry is only rebuilt after `invalidate`."""
    v = getattr(getattr(assistant, "kb", None), "version", None)
    return getattr(v, "path", None) if v is not None else None


class AssistantCache:
    """One Assistant per (KB name, variant), rebuilt when its KB's index version changed.

    >>> built = []
    >>> cache = AssistantCache(lambda name, variant, prev: built.append(name) or f"assistant of {name}")
    >>> cache.get("seeds"), cache.get("seeds"), built
    ('assistant of seeds', 'assistant of seeds', ['seeds'])
    >>> cache.invalidate("seeds"); _ = cache.get("seeds"); built
    ['seeds', 'seeds']
    """

    def __init__(self, build: Build):
        self._build = build
        self._entries: dict[tuple[str, str], list[Any]] = {}  # key → [assistant, version token]
        self._building: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    def _fresh(self, key: tuple[str, str]) -> tuple[Any, Any]:
        """(the cached Assistant if still current else None, the stale one or None)."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None, None
        if entry[1] is not _STALE and entry[1] == index_version(entry[0]):
            return entry[0], None
        return None, entry[0]

    def get(self, kb_name: str, variant: str = "") -> Any:
        key = (kb_name, variant)
        current, _ = self._fresh(key)
        if current is not None:
            return current
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            current, previous = self._fresh(key)  # another thread may have built it meanwhile
            if current is not None:
                return current
            a = self._build(kb_name, variant, previous)  # an error caches nothing
            with self._lock:
                self._entries[key] = [a, index_version(a)]
            return a

    def invalidate(self, kb_name: str | None = None) -> None:
        """Rebuild the Assistants of `kb_name` (all when None) on their next `get`."""
        with self._lock:
            for key, entry in self._entries.items():
                if kb_name is None or key[0] == kb_name:
                    entry[1] = _STALE


class Services:
    """Process-wide handles of the web chat: opened knowledge bases and assistants, by name.

    `kb_opener(name, cfg, create)` and `assistant_factory(kb, cfg)` default to the real
    `rag.index.kb.KnowledgeBase.open` / `rag.answer.assistant.Assistant.open`; tests pass stand-ins."""

    def __init__(
        self,
        cfg: Config,
        *,
        kb_opener: Callable[..., Any] | None = None,
        assistant_factory: Callable[..., Any] | None = None,
        kb_lister: Callable[[Config], list[str]] | None = None,
    ):
        self.cfg = cfg
        self._kb_opener = kb_opener
        self._assistant_factory = assistant_factory
        self._kb_lister = kb_lister
        self._kbs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.assistants = AssistantCache(self._build_assistant)

    def list_kbs(self) -> list[str]:
        if self._kb_lister is not None:
            names = list(self._kb_lister(self.cfg))
        else:
            from rag.index.kb import list_kbs

            names = list_kbs(self.cfg)
        # a KB created in this process but still empty has no index yet: list it anyway
        return sorted(set(names) | set(self._kbs))

    @staticmethod
    def check_name(name: str) -> str:
        """KB names come from the browser: only plain names, never paths (`../x`, `/etc`)."""
        if not valid_kb_name(name):
            raise ConfigError(f"无效的知识库名称 {name!r}")
        return name

    def kb(self, name: str, create: bool = False) -> Any:
        self.check_name(name)
        with self._lock:
            kb = self._kbs.get(name)
        if kb is not None:
            return kb
        if self._kb_opener is not None:
            kb = self._kb_opener(name, self.cfg, create)
        else:
            from rag.index.kb import KnowledgeBase

            kb = KnowledgeBase.open(name, self.cfg, create=create)
        with self._lock:
            return self._kbs.setdefault(name, kb)

    def _build_assistant(self, kb_name: str, model: str, previous: Any) -> Any:
        # the KB comes from this object's own cache, so `previous` is not needed to keep it
        kb = self.kb(kb_name)
        cfg = self.cfg.replace(llm={"model": model}) if model != self.cfg.llm.model else self.cfg
        if self._assistant_factory is not None:
            return self._assistant_factory(kb, cfg)
        from rag.answer.assistant import Assistant

        return Assistant.open(kb, cfg)

    def assistant(self, kb_name: str, model: str) -> Any:
        """The Assistant of `kb_name` answering with `model` ("" = the configured one)."""
        return self.assistants.get(kb_name, model or self.cfg.llm.model)

    def uploads_dir(self, kb_name: str) -> Path:
        """Where uploaded files are kept (the KB indexes them from here; re-uploading a file of
        the same name updates that document)."""
        return Path(self.cfg.paths.home) / "uploads" / self.check_name(kb_name)


# ------------------------------------------------------------------ KB admin (the Documents tab)


def index_uploads(
    services: Services,
    kb_name: str,
    files: Sequence[Any],
    progress: Callable[..., Any] | None = None,
) -> list[tuple[str, str, str]]:
    """Store and index uploaded files (rag.index.uploads: a stored file is replaced only after its new
    version indexed; one bad file never stops the others). Returns (status, file name, message)
    per file for `ui.render.index_report_html`."""
    from rag.index.uploads import index_uploads as store_and_index_all

    kb = services.kb(kb_name, create=True)  # checks the name before anything is written
    try:
        return store_and_index_all(kb, services.uploads_dir(kb_name), files, services.cfg.ui.max_upload_mb, progress)
    finally:
        services.assistants.invalidate(kb_name)


def delete_document(services: Services, kb_name: str, doc_id: str) -> str:
    kb = services.kb(kb_name)
    known = {d.doc_id: d for d in kb.documents()}
    if doc_id not in known:
        raise ConfigError(f"知识库 {kb_name} 中没有文档 {doc_id}")
    kb.delete_document(doc_id)
    services.assistants.invalidate(kb_name)
    # drop the stored upload too, so a later re-index of the folder does not bring it back
    src = Path(known[doc_id].source or "")
    up = services.uploads_dir(kb_name)
    for cand in (src, up / src.name):
        try:
            if cand.name and cand.resolve().parent == up.resolve() and cand.is_file():
                cand.unlink()
        except OSError:
            pass
    return f"已删除 {doc_id}"


def create_kb(services: Services, name: str) -> str:
    name = (name or "").strip()
    if not valid_kb_name(name):
        raise ConfigError(f"知识库名称只能包含字母、数字、汉字、'_'、'-'、'.'，且不超过 {LIMITS.kb_name_chars} 个字符")
    if name in services.list_kbs():
        raise ConfigError(f"知识库「{name}」已存在")
    services.kb(name, create=True)
    return name
