"""Candidate learnt scorers on the dev split of Banking77 train (train only), before adopting one.

Reviews are simulated as in bench/learnt_scorer.py (n per label of the pool, nested). For each
count, dev accuracy (2,000 items of train, never reviewed) and the cost of a refit of:

- `today`: the retrieval rule alone; `linear`: the adopted head (app/rac/scorer.py);
- `finetune`: the embedder itself fine-tuned on the labelled texts (label profiles, schema
  examples, reviews) with a cosine-softmax head and cross-entropy, or `--loss supcon` for a
  supervised contrastive loss as SetFit's body training (in-batch positives share a label), a
  fixed wall-clock budget of epochs; then the label index is rebuilt with the tuned encoder
  (profiles, examples and reviews re-embedded), and dev is embedded with it and labelled by the
  rule, by the tuned head, and by the rule re-ranked by a linear head refitted on the new vectors.
  Refit time = fine-tuning + re-embedding the index; embedding the items again is the cost that
  every stored item would pay too (reported as items/s of the tuned encoder).

`--embedder-path` runs the same on another sentence-transformers model (e.g. all-mpnet-base-v2)
and reports its items/s.

    python bench/scorer_candidates.py --schema schemas/banking77.yaml --train train.csv \
        --test test.csv --out bench/results/scorer_candidates.json [--embedder-path DIR] \
        [--finetune-seconds 45] [--per-label 5 10 20] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.rac.bundled import embedder_model_dir  # noqa: E402
from app.rac.embedder import Embedder, SentenceTransformerEmbedder  # noqa: E402
from app.rac.index import LabelIndex, profile_text  # noqa: E402
from app.rac.scorer import fit_scorer  # noqa: E402
from bench.learnt_scorer import Setup, _reviewed  # noqa: E402


class TunedEmbedder(Embedder):
    """A sentence-transformers model being fine-tuned, as an Embedder (unit vectors)."""

    def __init__(self, model, model_id: str) -> None:  # type: ignore[no-untyped-def]
        self.model, self.model_id = model, model_id
        self.dim = int(model.get_embedding_dimension())

    def embed(self, texts):  # type: ignore[no-untyped-def]
        import torch

        self.model.eval()
        with torch.no_grad():
            vectors = self.model.encode(list(texts), batch_size=64, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def training_texts(s: Setup, reviewed: list[int]) -> tuple[list[str], np.ndarray]:
    texts = [profile_text(x) for x in s.labels]
    owners = list(range(len(s.labels)))
    for i, label in enumerate(s.labels):
        for example in label.examples:
            texts.append(example.strip())
            owners.append(i)
    ids = {x.name: i for i, x in enumerate(s.labels)}
    for r in reviewed:
        texts.append(s.pool[r][0])
        owners.append(ids[s.pool[r][1]])
    return texts, np.array(owners)


def finetune(s: Setup, path: Path, texts: list[str], owners: np.ndarray, seconds: float,
             loss_name: str, seed: int = 0) -> tuple[TunedEmbedder, np.ndarray, dict]:
    """Fine-tune a fresh copy of the encoder for at most `seconds` (whole batches)."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(seed)
    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    tuned = TunedEmbedder(model, f"tuned-{path.name}")
    started = time.perf_counter()
    with torch.no_grad():  # the head starts at each label's mean direction
        start_vectors = torch.tensor(tuned.embed(texts))
    n_labels = len(s.labels)
    centroids = torch.zeros(n_labels, start_vectors.shape[1])
    centroids.index_add_(0, torch.tensor(owners), start_vectors)
    head = torch.nn.Parameter(torch.nn.functional.normalize(centroids, dim=1))
    scale = 20.0  # cosine-softmax temperature (as SetFit-style heads on unit vectors)
    optimiser = torch.optim.AdamW([{"params": model.parameters(), "lr": 3e-5},
                                   {"params": [head], "lr": 3e-3}])
    rng = np.random.default_rng(seed)
    model.train()
    steps, epochs, batch = 0, 0.0, 32
    y_all = torch.tensor(owners)
    while time.perf_counter() - started < seconds:
        order = rng.permutation(len(texts))
        for b in range(0, len(order), batch):
            if time.perf_counter() - started >= seconds:
                break
            idx = order[b:b + batch]
            features = model.tokenize([texts[i] for i in idx])
            out = model(features)["sentence_embedding"]
            z = torch.nn.functional.normalize(out, dim=1)
            y = y_all[idx]
            if loss_name == "supcon":
                sim = z @ z.T * scale
                eye = torch.eye(len(idx), dtype=torch.bool)
                sim = sim.masked_fill(eye, -1e9)
                pos = (y[:, None] == y[None, :]) & ~eye
                logp = sim - torch.logsumexp(sim, dim=1, keepdim=True)
                has = pos.any(1)
                loss = -(logp * pos).sum(1)[has] / pos.sum(1)[has]
                loss = loss.mean() if has.any() else sim.sum() * 0
                # keep a class head too, so every example (not only in-batch pairs) teaches
                logits = scale * z @ torch.nn.functional.normalize(head, dim=1).T
                loss = loss + torch.nn.functional.cross_entropy(logits, y)
            else:
                logits = scale * z @ torch.nn.functional.normalize(head, dim=1).T
                loss = torch.nn.functional.cross_entropy(logits, y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            steps += 1
            epochs += len(idx) / len(texts)
    train_seconds = time.perf_counter() - started
    weights = torch.nn.functional.normalize(head.detach(), dim=1).numpy()
    return tuned, weights * scale, {"train_seconds": train_seconds, "steps": steps,
                                    "epochs": epochs}


def evaluate_finetune(s: Setup, path: Path, reviewed: list[int], seconds: float,
                      loss_name: str) -> dict:
    texts, owners = training_texts(s, reviewed)
    tuned, head, info = finetune(s, path, texts, owners, seconds, loss_name)
    started = time.perf_counter()
    index = LabelIndex.build(s.labels, tuned)
    if reviewed:
        index.add_exemplars([str(i) for i in reviewed],
                            tuned.embed([s.pool[i][0] for i in reviewed]),
                            [s.pool[i][1] for i in reviewed])
    rebuild = time.perf_counter() - started
    started = time.perf_counter()
    dev_vectors = tuned.embed([t for t, _ in s.dev])
    items_per_second = len(s.dev) / (time.perf_counter() - started)
    engine_rows = s.dev
    rule = s.accuracy(s.engine.classify([""] * len(dev_vectors), index, _params(),
                                        vectors=dev_vectors), engine_rows)
    head_pred = (dev_vectors @ head.T).argmax(1)
    head_acc = float(np.mean([s.labels[p].name == g for p, (_, g) in zip(head_pred, s.dev,
                                                                          strict=True)]))
    linear = fit_scorer(index, version=1)
    linear_acc = s.accuracy(s.engine.classify([""] * len(dev_vectors), index, _params(),
                                              vectors=dev_vectors, scorer=linear), s.dev)
    return {"loss": loss_name, **info, "index_rebuild_seconds": rebuild,
            "linear_fit_seconds": linear.fit_seconds,
            "refit_seconds": info["train_seconds"] + rebuild + linear.fit_seconds,
            "tuned_items_per_second": items_per_second, "dev_rule": rule,
            "dev_tuned_head": head_acc, "dev_rule_plus_linear": linear_acc}


def _params():  # type: ignore[no-untyped-def]
    from bench.learnt_scorer import RETRIEVAL

    return RETRIEVAL


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", type=Path, required=True)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--embedder-path", type=Path, default=None)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--per-label", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--finetune-seconds", type=float, default=0.0,
                    help="budget of each fine-tuning (0: frozen candidates only)")
    ap.add_argument("--loss", choices=("ce", "supcon"), nargs="+", default=["ce"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    s = Setup(args, pool_per_label=max(args.per_label), dev_only=True)
    path = args.embedder_path or embedder_model_dir()
    started = time.perf_counter()
    SentenceTransformerEmbedder(path).embed([t for t, _ in s.dev[:200]])
    report: dict = {"embedder": path.name, "dev_items": len(s.dev),
                    "frozen_items_per_second": 200 / (time.perf_counter() - started),
                    "load_average_start": os.getloadavg(), "per_label": {}}
    print(json.dumps(report), flush=True)
    for n in args.per_label:
        reviewed = _reviewed(s, n)
        index = s.index_with(reviewed)
        linear = fit_scorer(index, version=1)
        row: dict = {"reviews": len(reviewed),
                     "dev_today": s.accuracy(s.label(s.dev_vectors, index, None), s.dev),
                     "dev_linear": s.accuracy(s.label(s.dev_vectors, index, linear), s.dev),
                     "linear_fit_seconds": linear.fit_seconds}
        if args.finetune_seconds > 0:
            for loss in args.loss:
                row[f"finetune_{loss}"] = evaluate_finetune(s, path, reviewed,
                                                            args.finetune_seconds, loss)
        row["load_average"] = os.getloadavg()
        report["per_label"][str(n)] = row
        print(n, json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
