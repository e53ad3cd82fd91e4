"""Loading a trained judge (the GGUF file `rac judge train` writes) on the chosen serving path.

Both paths read the same file and answer the same questions alike (docs/results.md, "Serving a
trained judge"). llama.cpp is the default: on this project's 2-core CPU it answered faster than
transformers did, loads in about a second instead of dequantizing for half a minute, and keeps
the trained judge on the same runtime as the bundled one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from app.rac.judge import Judge

Backend = Literal["llama_cpp", "transformers"]
SERVING_BACKEND: Backend = "llama_cpp"


def load_trained_judge(path: Path, *, model_id: str, threads: int | None = None,
                       backend: Backend = SERVING_BACKEND) -> Judge:
    if backend == "transformers":
        from app.rac.judges.transformers_judge import TransformersJudge

        return TransformersJudge(path, model_id=model_id, threads=threads)
    from app.rac.judges.trained_llama_cpp import TrainedLlamaCppJudge

    return TrainedLlamaCppJudge(path, model_id=model_id, n_threads=threads)
