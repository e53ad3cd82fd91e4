"""Text -> normalised float32 vectors."""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.rac.bundled import embedder_model_dir


class Embedder(ABC):
    model_id: str
    dim: int

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Float32 array (len(texts), dim), each row of unit length."""


class SentenceTransformerEmbedder(Embedder):
    """A local sentence-transformers model (default: the bundled all-MiniLM-L6-v2), on the CPU."""

    def __init__(self, model_path: Path | None = None, batch_size: int = 64,
                 device: str = "cpu") -> None:
        # Never reach for a model hub: everything needed is on disk.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        path = Path(model_path) if model_path else embedder_model_dir()
        self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        self.batch_size = batch_size
        self.dim = int(self._model.get_embedding_dimension() or 0)
        self.model_id = _model_id(path, bundled=model_path is None)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(list(texts), batch_size=self.batch_size,
                                     normalize_embeddings=True, convert_to_numpy=True,
                                     show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _model_id(path: Path, *, bundled: bool) -> str:
    """Names the weights (not where they are installed), so caches survive a reinstall; the
    config and weight sizes stand in for a hash of 90 MB, which would slow every start."""
    fingerprint = hashlib.sha256()
    for name in ("config.json", "modules.json", "sentence_bert_config.json"):
        if (path / name).exists():
            fingerprint.update((path / name).read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        fingerprint.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return f"{'all-MiniLM-L6-v2' if bundled else path.name}-{fingerprint.hexdigest()[:12]}"
