import json
from pathlib import Path

import pytest

from rag.errors import ConfigError

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
    with pytest.raises(ConfigError, match="retrieve.kk"):
        load_config(f, env={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml", env={})


def test_home_from_env_and_save_hides_secrets(tmp_path):
    cfg = load_config(None, {"llm": {"api_key": "sk-secret"}}, env={"RAG_HOME": str(tmp_path)})
    assert cfg.paths.kb_dir("x") == tmp_path / "kb" / "x"
    cfg.save(tmp_path / "config.json")
    saved = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert saved["llm"]["api_key"] == "***"


def test_short_env_names_and_openai_defaults():
    # RAG_API_KEY → serve.api_key (masked when saved); OPENAI_* are defaults a RAG_LLM_* beats
    env = {"RAG_API_KEY": "k1", "OPENAI_BASE_URL": "http://a/v1", "RAG_LLM_BASE_URL": "http://b/v1", "OPENAI_API_KEY": "sk-o"}
    cfg = load_config(None, env=env)
    assert cfg.serve.api_key == "k1" and cfg.llm.base_url == "http://b/v1" and cfg.llm.api_key == "sk-o"
    assert cfg.to_dict()["serve"]["api_key"] == "***"
    # a command-line flag beats the environment
    assert load_config(None, {"serve": {"api_key": "k2"}}, env=env).serve.api_key == "k2"


def test_only_config_reads_settings_from_the_environment():
    # rag.config is the one place a setting comes from the environment (issue 14); the few other
    # reads are process plumbing, not settings: llama.cpp's library path (rag.llm.kernels) and
    # the offline switches the CLI sets for transformers / gradio
    import ast

    root = Path(__file__).resolve().parent.parent
    allowed = {"rag/config.py", "rag/llm/kernels.py"}
    for f in [*root.glob("rag/**/*.py"), *root.glob("embeddings/**/*.py"), *root.glob("ui/**/*.py")]:
        rel = f.relative_to(root).as_posix()
        if rel in allowed:
            continue
        for n in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("get", "getenv", "pop"):
                v = n.func.value
                env = (isinstance(v, ast.Attribute) and v.attr == "environ") or (isinstance(v, ast.Name) and v.id == "os")
                assert not env, f"{rel}:{n.lineno} reads the environment"


def test_replace_copies():
    a = Config()
    b = a.replace(retrieve={"k": 11})
    assert b.retrieve.k == 11 and a.retrieve.k != 11


@pytest.mark.parametrize(
    "env, message",
    [
        ({"RAG_RETRIEVE_K": "abc"}, "retrieve.k = 'abc' (RAG_RETRIEVE_K): expected an integer"),
        ({"RAG_RETRIEVE_K": "0"}, "retrieve.k = 0 (RAG_RETRIEVE_K): must be between 1 and 100"),
        ({"RAG_RETRIEVE_MODE": "semantic"}, "choose one of hybrid, dense, bm25"),
        ({"RAG_LLM_KERNELS": "fastest"}, "llm.kernels = 'fastest' (RAG_LLM_KERNELS): choose one of auto, portable"),
        ({"RAG_EMBED_CACHE": "maybe"}, "embed.cache = 'maybe' (RAG_EMBED_CACHE): expected true or false"),
        ({"RAG_RETRIEVE_K": "20", "RAG_RETRIEVE_CANDIDATES": "10"}, "below retrieve.k"),
    ],
)
def test_bad_settings_name_the_key_the_source_and_what_is_allowed(env, message):
    with pytest.raises(ConfigError) as e:
        load_config(env=env)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_config_files_are_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[retrieve\nk = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, env={})
    typed = tmp_path / "typed.toml"
    typed.write_text('[retrieve]\nk = "many"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"retrieve.k = 'many' \(.*typed.toml\): expected an integer"):
        load_config(typed, env={})
    group = tmp_path / "group.toml"
    group.write_text("[retrival]\nk = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown config group"):
        load_config(group, env={})


@pytest.mark.parametrize("env", [{"RAG_RETRIEVE_K": "abc"}, {"RAG_CONFIG": "/nonexistent/rag.toml"}])
def test_cli_prints_one_line_for_a_config_error(env, monkeypatch, capsys):
    from rag.apps.cli import main

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["search", "南马路小学"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rag search: ") and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_prints_one_line_for_a_full_disk(monkeypatch, capsys):
    import errno

    from rag.apps import cli

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/kb/v2/vectors.faiss")

    parser = cli.build_parser()
    args = parser.parse_args(["search", "x"])
    monkeypatch.setattr(cli, "build_parser", lambda: type("P", (), {"parse_args": lambda self, a: args})())
    args.func = full
    assert cli.main(["search", "x"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "rag search: No space left on device: /data/kb/v2/vectors.faiss"


def test_an_empty_search_query_is_one_line_like_an_empty_question(capsys):
    from rag.apps.cli import main

    assert main(["search", "   "]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rag search: the query is empty") and len(err.splitlines()) == 1


def test_seeds_dir_from_env_and_a_clear_error_without_one(tmp_path, monkeypatch, capsys):
    import rag.config as config_mod
    from rag.apps.cli import main

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    assert load_config(env={"RAG_SEEDS_DIR": str(seeds)}).paths.seeds() == seeds
    # a repository checkout finds its seeds/; an installed package has none: "" until set
    assert Config().paths.seeds_dir == (str(config_mod.CHECKOUT_SEEDS) if config_mod.CHECKOUT_SEEDS.is_dir() else "")
    monkeypatch.setattr(config_mod, "CHECKOUT_SEEDS", tmp_path / "site-packages" / "seeds")
    with pytest.raises(ConfigError, match=r"paths\.seeds_dir is not set.*RAG_SEEDS_DIR"):
        load_config(env={}).paths.seeds()
    with pytest.raises(ConfigError, match=r"paths\.seeds_dir = '.*nope': no such folder.*RAG_SEEDS_DIR"):
        load_config(env={"RAG_SEEDS_DIR": str(tmp_path / "nope")}).paths.seeds()
    # `rag index` without a PATH says so in one line, before anything is opened or created
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAG_SEEDS_DIR", str(tmp_path / "nope"))
    assert main(["index", "--kb", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "paths.seeds_dir" in err and "RAG_SEEDS_DIR" in err
    assert not (tmp_path / "home" / "kb" / "x").exists()
