"""rag.llm.backends: the fake chat model, the backend factory's errors, the openai config, and (slow) a
real Chinese answer from the default local model."""

from __future__ import annotations

import threading

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from rag.config import LLMConfig, load_config
from rag.errors import ConfigError, ModelNotInstalled, RagError
from rag.llm.backends import FakeChatModel, LocalChatModel, get_chat_model


# ---------------------------------------------------------------------------- FakeChatModel


def test_fake_streams_character_by_character_and_records_prompt():
    m = FakeChatModel(responses=["北京【1】。"])
    msgs = [SystemMessage("只依据资料回答"), HumanMessage("中国的首都是哪里？")]
    pieces = [c.content for c in m.stream(msgs) if c.content]
    assert pieces == ["北", "京", "【", "1", "】", "。"]
    assert len(m.calls) == 1
    assert [x.content for x in m.calls[0]] == ["只依据资料回答", "中国的首都是哪里？"]
    assert m.prompts == ["system: 只依据资料回答\nuser: 中国的首都是哪里？"]


def test_fake_chunk_size_groups_characters():
    m = FakeChatModel(responses=["一二三四五"], chunk_size=2)
    assert [c.content for c in m.stream("问") if c.content] == ["一二", "三四", "五"]


def test_fake_invoke_returns_whole_text_and_same_as_stream():
    m = FakeChatModel(responses=["甲【1】", "乙【2】"])
    assert m.invoke("q1").content == "甲【1】"
    assert "".join(c.content for c in m.stream("q2")) == "乙【2】"
    assert [c[0].content for c in m.calls] == ["q1", "q2"]


def test_fake_cycles_by_default_and_pops_when_not_cycling():
    cyc = FakeChatModel(responses=["a", "b"])
    assert [cyc.invoke("x").content for _ in range(5)] == ["a", "b", "a", "b", "a"]
    once = FakeChatModel(responses=["a", "b"], cycle=False)
    assert [once.invoke("x").content for _ in range(2)] == ["a", "b"]
    with pytest.raises(IndexError, match="exhausted"):
        once.invoke("x")
    once.reset()
    assert once.invoke("y").content == "a" and len(once.calls) == 1


def test_fake_callable_answers_from_the_messages():
    def echo(messages):
        return "你问的是：" + messages[-1].content

    m = FakeChatModel(responses=echo)
    assert m.invoke([HumanMessage("它是哪一年成立的？")]).content == "你问的是：它是哪一年成立的？"
    history = [HumanMessage("甲"), AIMessage("乙"), HumanMessage("丙")]
    m.invoke(history)
    assert m.prompts[-1] == "user: 甲\nassistant: 乙\nuser: 丙"


def test_fake_honours_stop_sequences():
    m = FakeChatModel(responses=["答案【1】。\n问题：下一个"])
    assert m.invoke("q", stop=["\n问题"]).content == "答案【1】。"
    assert "".join(c.content for c in m.stream("q", stop=["\n问题"])) == "答案【1】。"


def test_fake_is_deterministic_across_threads():
    m = FakeChatModel(responses=[str(i) for i in range(8)])
    out: list[str] = []
    lock = threading.Lock()

    def work():
        r = m.invoke("q").content
        with lock:
            out.append(r)

    ts = [threading.Thread(target=work) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    # each scripted response handed out exactly once, none lost or duplicated
    assert sorted(out) == [str(i) for i in range(8)] and len(m.calls) == 8


def test_fake_without_responses_fails_clearly():
    with pytest.raises(ValueError, match="no responses"):
        FakeChatModel(responses=[]).invoke("q")


# ---------------------------------------------------------------------------- factory


def test_factory_fake_backend():
    m = get_chat_model(LLMConfig(backend="fake"))
    assert isinstance(m, FakeChatModel)
    assert m.invoke("q").content  # a non-empty default answer


def test_factory_unknown_backend_names_the_choices():
    with pytest.raises(ConfigError, match="unknown LLM backend 'gpt5'.*local, openai, extractive, fake"):
        get_chat_model(LLMConfig(backend="gpt5"))


def test_factory_extractive_is_not_a_chat_model():
    with pytest.raises(ConfigError, match="answer stage"):
        get_chat_model(LLMConfig(backend="extractive"))


def test_factory_local_missing_model_says_how_to_install(tmp_path):
    with pytest.raises(ModelNotInstalled, match=r"run `rag models install --llm qwen2.5-0.5b`"):
        get_chat_model(LLMConfig(backend="local", model="qwen2.5-0.5b"), tmp_path)


def test_factory_local_unknown_model(tmp_path):
    with pytest.raises(ConfigError, match="unknown local model 'llama-70b'.*qwen2.5-1.5b"):
        get_chat_model(LLMConfig(backend="local", model="llama-70b"), tmp_path)


def test_factory_local_truncated_file_counts_as_missing(tmp_path):
    (tmp_path / "llm").mkdir()
    (tmp_path / "llm" / "qwen2.5-0.5b.gguf").write_bytes(b"GGUF" + b"\0" * 100)
    with pytest.raises(ModelNotInstalled, match="--force"):
        get_chat_model(LLMConfig(backend="local", model="qwen2.5-0.5b"), tmp_path)


def test_factory_local_builds_model_without_loading(tmp_path, monkeypatch):
    """The Llama object is loaded lazily on the first call, not by the factory."""
    import rag.llm.backends as rl
    import rag.llm.install as mi

    fake = tmp_path / "llm" / "qwen2.5-0.5b.gguf"
    monkeypatch.setattr(mi, "model_path", lambda name, d: fake)
    monkeypatch.setattr(rl, "load_llama", lambda *a, **k: pytest.fail("loaded eagerly"))
    m = get_chat_model(LLMConfig(backend="local", model="qwen2.5-0.5b", n_ctx=2048, temperature=0.0, max_tokens=99), tmp_path)
    assert isinstance(m, LocalChatModel)
    assert (m.model_path, m.n_ctx, m.temperature, m.max_tokens) == (str(fake), 2048, 0.0, 99)
    assert m.slot == "main"
    c = get_chat_model(LLMConfig(backend="local", model="qwen2.5-0.5b"), tmp_path, slot="condense")
    assert c.slot == "condense"


def test_load_llama_caches_per_file_settings_and_slot(tmp_path, monkeypatch):
    """One Llama per (file, n_ctx, threads, slot), created once; unload_all closes them."""
    import sys
    import types

    import rag.llm.backends as rl

    made = []

    class Llama:
        def __init__(self, model_path, n_ctx, n_threads, **kw):
            self.args = (model_path, n_ctx, n_threads)
            self.closed = False
            made.append(self)

        def close(self):
            self.closed = True

    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=Llama))
    monkeypatch.setattr(rl, "_LLAMA_CACHE", {})
    f = tmp_path / "m.gguf"
    a, lock_a = rl.load_llama(f, 1024, 2)
    assert rl.load_llama(f, 1024, 2) == (a, lock_a)  # cached, same lock
    b, lock_b = rl.load_llama(f, 1024, 2, slot="condense")
    c, _ = rl.load_llama(f, 2048, 2)
    assert len(made) == 3 and b is not a and c is not a and lock_b is not lock_a
    assert a.args == (str(f.resolve()), 1024, 2)
    assert rl.load_llama(f, 1024, 0)[0].args[2] >= 1  # 0 threads = all cores, never llama.cpp's half
    rl.unload_all()
    assert all(x.closed for x in made) and rl._LLAMA_CACHE == {}


class _FakeLlama:
    """Stands in for llama_cpp.Llama: records requests, streams OpenAI-style deltas."""

    def __init__(self):
        self.requests = []

    def create_chat_completion(self, messages, stream=False, **kw):
        self.requests.append((messages, kw))
        if not stream:
            return {
                "choices": [{"message": {"role": "assistant", "content": "北京【1】"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
            }

        def gen():
            yield {"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]}
            for p in ["北京", "【1】"]:
                yield {"choices": [{"delta": {"content": p}, "finish_reason": None}]}
            yield {"choices": [{"delta": {}, "finish_reason": "stop"}]}

        return gen()


def test_local_model_maps_messages_and_streams_deltas(monkeypatch):
    import rag.llm.backends as rl

    fake = _FakeLlama()
    lock = threading.Lock()
    monkeypatch.setattr(rl, "load_llama", lambda *a, **k: (fake, lock))
    m = LocalChatModel(model_path="/x.gguf", model_name="qwen2.5-0.5b", temperature=0.2, max_tokens=50)
    msgs = [SystemMessage("系统"), HumanMessage("问"), AIMessage("答"), HumanMessage("再问")]
    chunks = list(m.stream(msgs, stop=["\n\n"]))
    assert "".join(c.content for c in chunks) == "北京【1】"
    sent, kw = fake.requests[0]
    assert [x["role"] for x in sent] == ["system", "user", "assistant", "user"]
    assert kw["stop"] == ["\n\n"] and kw["temperature"] == 0.2 and kw["max_tokens"] == 50
    assert not lock.locked()  # released after the stream ends
    res = m.invoke("问", max_tokens=7)
    assert res.content == "北京【1】" and res.usage_metadata["output_tokens"] == 3
    assert fake.requests[-1][1]["max_tokens"] == 7


def test_local_model_releases_lock_when_consumer_stops_early(monkeypatch):
    import rag.llm.backends as rl

    fake = _FakeLlama()
    lock = threading.Lock()
    monkeypatch.setattr(rl, "load_llama", lambda *a, **k: (fake, lock))
    m = LocalChatModel(model_path="/x.gguf")
    it = m.stream("问")
    next(it)
    assert lock.locked()  # held while generating
    it.close()
    assert not lock.locked()


# ---------------------------------------------------------------------------- openai


def test_openai_backend_from_config(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    m = get_chat_model(LLMConfig(backend="openai", model="deepseek-chat", base_url="http://127.0.0.1:9/v1", api_key="sk-test", temperature=0.0, max_tokens=77))
    assert m.model_name == "deepseek-chat"
    assert m.openai_api_base == "http://127.0.0.1:9/v1"
    assert m.openai_api_key.get_secret_value() == "sk-test"
    assert m.temperature == 0.0 and m.max_tokens == 77


def test_openai_backend_from_environment():
    # OPENAI_* are defaults (rag.config.ENV_DEFAULTS): a config file or RAG_LLM_* wins
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "OPENAI_API_KEY": "sk-env", "RAG_LLM_BACKEND": "openai",
           "RAG_LLM_MODEL": "qwen2.5:7b"}
    m = get_chat_model(load_config(env=env).llm)
    assert m.openai_api_base == "http://127.0.0.1:11434/v1"
    assert m.openai_api_key.get_secret_value() == "sk-env"
    cfg = load_config(env={**env, "RAG_LLM_BASE_URL": "http://h:8000/v1"})
    assert cfg.llm.base_url == "http://h:8000/v1" and cfg.llm.api_key == "sk-env"
    assert cfg.to_dict()["llm"]["api_key"] == "***"


def test_openai_backend_through_rag_env_vars(monkeypatch):
    env = {"RAG_LLM_BACKEND": "openai", "RAG_LLM_MODEL": "qwen-plus", "RAG_LLM_BASE_URL": "http://h:8000/v1"}
    cfg = load_config(env=env)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    m = get_chat_model(cfg.llm)
    assert (m.model_name, m.openai_api_base) == ("qwen-plus", "http://h:8000/v1")
    assert m.openai_api_key.get_secret_value()  # keyless local servers still get a placeholder


def test_openai_backend_needs_base_url(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        get_chat_model(LLMConfig(backend="openai", model="deepseek-chat"))


def test_openai_backend_needs_model(monkeypatch):
    with pytest.raises(ConfigError, match="model name"):
        get_chat_model(LLMConfig(backend="openai", model="", base_url="http://h/v1"))


def test_openai_backend_rejects_local_model_name():
    with pytest.raises(ConfigError, match="local model name"):
        get_chat_model(LLMConfig(backend="openai", model="qwen2.5-1.5b", base_url="http://h/v1"))


def test_errors_are_rag_errors():
    assert issubclass(ConfigError, RagError) and issubclass(ModelNotInstalled, RagError)


# ---------------------------------------------------------------------------- real model


@pytest.mark.slow
def test_local_default_model_answers_in_chinese_with_citation():
    """CI runs `rag models install` first: a missing model is a failure here, not a skip."""
    import os

    from rag.answer.prompts import SYSTEM_PROMPT

    cfg = load_config(env={k: v for k, v in os.environ.items() if k in ("RAG_HOME", "RAG_MODELS_DIR")})
    llm_cfg = LLMConfig(backend="local", model=cfg.llm.model, max_tokens=48, temperature=0.0)
    model = get_chat_model(llm_cfg, cfg.paths.models_dir)  # ModelNotInstalled fails the test
    msgs = [
        # the project's own system prompt: its worked example shows the marker format (a bare
        # "用【n】标出" instruction was copied literally as 【n】 by the 1.5B model)
        SystemMessage(SYSTEM_PROMPT),
        HumanMessage(
            "<资料>\n【1】中央确定2012年为基层组织建设年，是深化创先争优活动的重要举措。\n"
            "【2】天津市各级党组织紧紧围绕打造新滨海、建设新天津的活动主题开展工作。\n</资料>\n"
            "问题：中央确定哪一年为基层组织建设年？"
        ),
    ]
    pieces = [c.content for c in model.stream(msgs)]
    text = "".join(pieces)
    assert sum(1 for p in pieces if p) >= 2, "expected a streamed answer"
    assert "2012" in text
    assert "【1】" in text or "[1]" in text
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text)
    # the Llama object is cached: a second model for the same file shares it
    import rag.llm.backends as rl

    assert rl.load_llama(model.model_path, model.n_ctx, model.n_threads) is rl.load_llama(model.model_path, model.n_ctx, model.n_threads)
