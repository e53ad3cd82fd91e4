"""Loading a trained judge (the GGUF file `rac judge train` writes) on the chosen serving path.

Both paths read the same file and agree (mean |P(yes) difference| 0.018, the same decision at 0.5
for 96% of questions; llama.cpp multiplies with the 4-bit weights, transformers with their
dequantized floats). Measured taking turns on 180 Banking77 questions, 1 thread, on a shared
2-core machine (docs/results.md, "Serving a trained judge"): transformers answered the engine's
batched rounds 1.2-2x faster, llama.cpp answered one question per call 2x faster, loads in ~2 s
instead of ~30 s of dequantizing, and needs ~120 MB instead of ~540 MB per judge.

llama.cpp is the default: every process that labels (API, workers, CLI) loads each schema's
judge, the synchronous classify endpoint asks one question at a time, and the bundled judge runs
there too. `backend="transformers"` serves large batch jobs faster.
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
