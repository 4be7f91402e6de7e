import json

import pytest

from rag.config import Config, load_config


def test_precedence_file_env_overrides(tmp_path):
    f = tmp_path / "rag.toml"
    f.write_text('[retrieve]\nk = 7\nmode = "bm25"\n[llm]\nbackend = "extractive"\n', encoding="utf-8")
    cfg = load_config(f, env={})
    assert (cfg.retrieve.k, cfg.retrieve.mode, cfg.llm.backend) == (7, "bm25", "extractive")
    cfg = load_config(f, env={"RAG_RETRIEVE_K": "9", "RAG_ANSWER_CONDENSE": "false"})
    assert cfg.retrieve.k == 9 and cfg.answer.condense is False and cfg.retrieve.mode == "bm25"
    cfg = load_config(f, {"retrieve": {"k": 3, "mode": None}}, env={"RAG_RETRIEVE_K": "9"})
    assert cfg.retrieve.k == 3 and cfg.retrieve.mode == "bm25"  # None = flag not given


def test_unknown_settings_are_errors(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[retrieve]\nkk = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="retrieve.kk"):
        load_config(f, env={})
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.toml", env={})


def test_home_from_env_and_save_hides_secrets(tmp_path):
    cfg = load_config(None, {"llm": {"api_key": "sk-secret"}}, env={"RAG_HOME": str(tmp_path)})
    assert cfg.paths.kb_dir("x") == tmp_path / "kb" / "x"
    cfg.save(tmp_path / "config.json")
    saved = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert saved["llm"]["api_key"] == "***"


def test_replace_copies():
    a = Config()
    b = a.replace(retrieve={"k": 11})
    assert b.retrieve.k == 11 and a.retrieve.k != 11
