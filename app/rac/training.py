"""Training the bundled judge on a schema's labels: yes/no pairs from reviewed items.

A reviewed item and its label is a `yes` question; the same item with another label is a `no`:
hard negatives are the labels retrieval ranks highest for the item (what the engine would ask the
judge about before the right one), easy negatives random other labels. Small models gain most from
few examples of mixed difficulty, so both kinds are kept.

The loss is on the answer token only: binary cross-entropy on logit(yes) - logit(no) at the
position after the chat prompt the trained judge is served with (`trained_prompt`), where each
side is the log-sum-exp over the vocabulary's spellings of the word, exactly the P(yes) the judges
compute. Positives are weighted up to balance the negatives, so 0.5 stays a sensible threshold.

To stay sane on a CPU only the top `train_layers` decoder layers (and the final norm) learn. The
frozen layers below them are run once per pair, before the first epoch, and their output is kept:
each epoch then costs only the top layers. The embedding matrix (tied to the output head) stays
frozen, so the vocabulary is untouched and the saved judge differs from the bundled one only in
those layers (`gguf_export` writes it back as GGUF).
"""

from __future__ import annotations

import copy
import functools
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from app.rac.embedder import Embedder
from app.rac.index import LabelIndex
from app.rac.judge import answer_token_ids
from app.rac.prompts import LabelInfo, Question
from app.rac.trained_prompt import TRAINED_PROMPT_VERSION, trained_messages_for

if TYPE_CHECKING:
    import torch

PairKind = Literal["positive", "hard", "easy"]


@dataclass(frozen=True)
class LabelledText:
    """A text with its true label: a reviewed item, a row of a CSV, or a schema example."""

    text: str
    label: str


@dataclass(frozen=True)
class Pair:
    question: Question
    answer: bool
    kind: PairKind


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 2
    """Passes over the pairs."""
    batch_size: int = 16
    """Pairs per optimiser step."""
    learning_rate: float = 2e-4
    train_layers: int = 4
    """Top decoder layers that learn; the rest stay frozen (and are run only once)."""
    hard_negatives: int = 2
    """`no` pairs per item from the labels retrieval ranks highest (other than the true one)."""
    easy_negatives: int = 1
    """`no` pairs per item with a random other label."""
    seed: int = 0
    threads: int | None = None
    """torch CPU threads; empty means torch's default."""

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("epochs and batch_size must be >= 1, learning_rate > 0")
        if self.train_layers < 1:
            raise ValueError("train_layers must be >= 1")
        if self.hard_negatives < 0 or self.easy_negatives < 0:
            raise ValueError("negatives per item must be >= 0")


@dataclass
class TrainReport:
    pairs: dict[str, int]
    """How many pairs of each kind were trained on."""
    steps: int
    seconds: float
    """Wall time of the whole training (features of the frozen layers included)."""
    loss_first: float
    """Mean loss of the first epoch's first tenth of steps, and of the last epoch."""
    loss_last: float
    train_auc_before: float | None
    train_auc_after: float | None
    """AUC of P(yes) on the training pairs (positives vs negatives), before and after."""
    config: dict[str, Any] = field(default_factory=dict)


def select_examples(rows: Sequence[LabelledText], per_label: int | None, seed: int
                    ) -> list[LabelledText]:
    """At most `per_label` rows of each label, in input order. The choice is nested: with the
    same seed, the rows chosen for n per label are among those chosen for any larger n (a
    simulated review that goes on in rounds)."""
    if per_label is None:
        return list(rows)
    by_label: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_label.setdefault(row.label, []).append(i)
    chosen: set[int] = set()
    for label in sorted(by_label):
        ids = list(by_label[label])
        random.Random(f"{seed}:{label}").shuffle(ids)
        chosen.update(ids[:per_label])
    return [rows[i] for i in sorted(chosen)]


def schema_examples(labels: Sequence[LabelInfo]) -> list[LabelledText]:
    """The examples written into the schema, as labelled texts (schema-only training)."""
    return [LabelledText(e.strip(), label.name) for label in labels for e in label.examples
            if e.strip()]


def make_pairs(examples: Sequence[LabelledText], labels: Sequence[LabelInfo],
               ranked: Sequence[Sequence[str]], config: TrainConfig) -> list[Pair]:
    """One `yes` pair per example, plus hard negatives from `ranked` (the labels retrieval ranks
    highest for each example, best first) and easy negatives drawn at random.

    Examples whose label is not in `labels` are skipped (e.g. a label dropped from the schema).
    """
    by_name = {label.name: label for label in labels}
    rng = random.Random(config.seed)
    pairs: list[Pair] = []
    for example, candidates in zip(examples, ranked, strict=True):
        gold = by_name.get(example.label)
        if gold is None:
            continue
        pairs.append(Pair(Question(example.text, gold), True, "positive"))
        hard = [c for c in candidates if c != gold.name and c in by_name][:config.hard_negatives]
        for name in hard:
            pairs.append(Pair(Question(example.text, by_name[name]), False, "hard"))
        others = [n for n in by_name if n != gold.name and n not in hard]
        for name in rng.sample(others, min(config.easy_negatives, len(others))):
            pairs.append(Pair(Question(example.text, by_name[name]), False, "easy"))
    return pairs


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    from app.rac.evaluation import mann_whitney_auc

    return mann_whitney_auc(list(positives), list(negatives))


def pair_auc(pairs: Sequence[Pair], p_yes: Sequence[float]) -> float | None:
    return auc([p for pair, p in zip(pairs, p_yes, strict=True) if pair.answer],
               [p for pair, p in zip(pairs, p_yes, strict=True) if not pair.answer])


class JudgeTrainer:
    """The bundled judge loaded into torch (dequantized from its GGUF file), trained in place."""

    def __init__(self, base_gguf: Path, threads: int | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.base_gguf = Path(base_gguf)
        self.tokenizer, base = _load_base(str(self.base_gguf))
        self.model = copy.deepcopy(base)  # trained in place: the cached base stays pristine
        self.model.eval()
        self.yes_ids, self.no_ids = tokenizer_answer_ids(self.tokenizer)
        self.trained_layers: list[int] = []

    # ---- prompts ------------------------------------------------------------------------
    def encode(self, question: Question) -> list[int]:
        return encode_question(self.tokenizer, question)

    # ---- the forward pass, split at the frozen boundary ---------------------------------
    def _layers_forward(self, hidden: torch.Tensor, layers: Sequence[Any]) -> torch.Tensor:
        import torch

        positions = torch.arange(hidden.shape[1]).unsqueeze(0)
        rotary = self.model.model.rotary_emb(hidden, position_ids=positions)
        # Right padding and a causal mask: a real token never attends to the padding after it.
        mask = causal_mask(hidden.shape[1])
        for layer in layers:
            hidden = layer(hidden, attention_mask=mask, position_embeddings=rotary,
                           position_ids=positions)
        return hidden

    def _answer_logit(self, hidden: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """logit(yes) - logit(no) at each row's last real token."""
        import torch

        final = self.model.model.norm(hidden[torch.arange(len(last)), last])
        weights = self.model.lm_head.weight
        yes = (final @ weights[self.yes_ids].T).logsumexp(-1)
        no = (final @ weights[self.no_ids].T).logsumexp(-1)
        return yes - no

    def _boundary_features(self, tokens: Sequence[list[int]], frozen: int, batch: int = 16,
                           progress: bool = False) -> list[torch.Tensor]:
        """Hidden states after the frozen layers, per pair (no padding kept)."""
        import torch
        from tqdm import tqdm

        out: list[torch.Tensor] = [None] * len(tokens)  # type: ignore[list-item]
        order = sorted(range(len(tokens)), key=lambda i: len(tokens[i]))  # little padding
        layers = list(self.model.model.layers[:frozen])
        bar = tqdm(total=len(tokens), desc="frozen layers", unit="pair", disable=not progress)
        with torch.no_grad():
            for start in range(0, len(order), batch):
                ids = order[start:start + batch]
                padded, _ = pad([tokens[i] for i in ids])
                hidden = self._layers_forward(self.model.model.embed_tokens(padded), layers)
                for row, i in enumerate(ids):
                    out[i] = hidden[row, :len(tokens[i])].clone()
                bar.update(len(ids))
        bar.close()
        return out

    def _top_logits(self, features: Sequence[torch.Tensor], top: Sequence[Any]) -> torch.Tensor:
        import torch

        lengths = torch.tensor([len(f) for f in features])
        hidden = torch.nn.utils.rnn.pad_sequence(list(features), batch_first=True)
        return self._answer_logit(self._layers_forward(hidden, top), lengths - 1)

    def _p_yes_from_features(self, features: Sequence[torch.Tensor], top: Sequence[Any],
                             batch: int = 32) -> list[float]:
        import torch

        answers: list[float] = []
        with torch.no_grad():
            for start in range(0, len(features), batch):
                logits = self._top_logits(features[start:start + batch], top)
                answers.extend(torch.sigmoid(logits).tolist())
        return answers

    def p_yes(self, questions: Sequence[Question], batch: int = 16) -> list[float]:
        """P(yes) with the current weights (full forward pass; for checks and metrics)."""
        tokens = [self.encode(q) for q in questions]
        layers = list(self.model.model.layers)
        feats = self._boundary_features(tokens, len(layers), batch)
        return self._p_yes_from_features(feats, [], batch)

    # ---- training -----------------------------------------------------------------------
    def train(self, pairs: Sequence[Pair], config: TrainConfig, *, progress: bool = True,
              on_step: Callable[[int, int, float], None] | None = None) -> TrainReport:
        """Train the top layers on `pairs`. `on_step(step, steps, loss)` reports progress."""
        import torch
        from tqdm import tqdm

        if not pairs or all(p.answer for p in pairs) or not any(p.answer for p in pairs):
            raise ValueError("training needs both yes and no pairs")
        started = time.perf_counter()
        torch.manual_seed(config.seed)
        n_layers = len(self.model.model.layers)
        k = min(config.train_layers, n_layers)
        frozen, top = n_layers - k, list(self.model.model.layers[n_layers - k:])
        self.trained_layers = list(range(frozen, n_layers))
        for param in self.model.parameters():
            param.requires_grad_(False)
        trainable = [p for layer in top for p in layer.parameters()]
        trainable += list(self.model.model.norm.parameters())
        for param in trainable:
            param.requires_grad_(True)

        tokens = [self.encode(p.question) for p in pairs]
        features = self._boundary_features(tokens, frozen, progress=progress)
        answers = torch.tensor([float(p.answer) for p in pairs])
        before = self._p_yes_from_features(features, top)

        n_pos = float(answers.sum())
        pos_weight = torch.tensor((len(pairs) - n_pos) / n_pos)
        optimiser = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=0.0)
        steps_per_epoch = math.ceil(len(pairs) / config.batch_size)
        steps = steps_per_epoch * config.epochs
        # Linear warm-up over the first tenth, then linear decay: stable with tiny data.
        warmup = max(1, steps // 10)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(
            (s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup + 1))))
        rng = random.Random(config.seed)
        losses: list[float] = []
        bar = tqdm(total=steps, desc="training", unit="step", disable=not progress)
        self.model.train()
        step = 0
        for _ in range(config.epochs):
            order = list(range(len(pairs)))
            rng.shuffle(order)
            for start in range(0, len(order), config.batch_size):
                ids = order[start:start + config.batch_size]
                logits = self._top_logits([features[i] for i in ids], top)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, answers[ids], pos_weight=pos_weight)
                optimiser.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimiser.step()
                schedule.step()
                step += 1
                value = float(loss.detach())
                losses.append(value)
                bar.update(1)
                bar.set_postfix(step=step, loss=f"{value:.3f}")
                if on_step is not None:
                    on_step(step, steps, value)
        bar.close()
        self.model.eval()
        for param in trainable:
            param.requires_grad_(False)
        after = self._p_yes_from_features(features, top)
        head = losses[:max(1, steps // 10)]
        tail = losses[-steps_per_epoch:]
        kinds = {kind: sum(p.kind == kind for p in pairs) for kind in ("positive", "hard", "easy")}
        return TrainReport(pairs=kinds, steps=steps, seconds=time.perf_counter() - started,
                           loss_first=sum(head) / len(head), loss_last=sum(tail) / len(tail),
                           train_auc_before=pair_auc(pairs, before),
                           train_auc_after=pair_auc(pairs, after),
                           config={**asdict(config), "prompt_version": TRAINED_PROMPT_VERSION})

    def changed_weights(self) -> dict[str, Any]:
        """The trained tensors by their Hugging Face names, as float32 numpy arrays."""
        names = [f"model.layers.{i}." for i in self.trained_layers] + ["model.norm."]
        return {name: tensor.detach().float().numpy().copy()
                for name, tensor in self.model.state_dict().items()
                if any(name.startswith(prefix) for prefix in names)}

    def save(self, out: Path, *, name: str = "rac trained judge") -> Path:
        """Write the trained judge as a GGUF file (the bundled file with the trained tensors)."""
        from app.rac.gguf_export import export_gguf

        export_gguf(self.base_gguf, out, self.changed_weights(), name=name)
        return out


# ---- helpers shared with the transformers judge ------------------------------------------
@functools.lru_cache(maxsize=1)
def _load_base(path: str) -> tuple[Any, Any]:
    """Tokenizer and float32 model of a GGUF file. Dequantizing takes ~30 s on a small CPU, so
    the last base loaded is kept for the next training in this process."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(Path(path).parent), Path(path).name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    return tokenizer, model.eval()


def tokenizer_answer_ids(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The yes / no token ids of a transformers tokenizer, collected as the llama.cpp judge
    collects them, so both read the same P(yes)."""
    return answer_token_ids(lambda token_id: tokenizer.decode([token_id]), len(tokenizer))


def encode_question(tokenizer: Any, question: Question) -> list[int]:
    prompt = tokenizer.apply_chat_template(trained_messages_for(question), tokenize=False,
                                           add_generation_prompt=True)
    return list(tokenizer(prompt, add_special_tokens=False).input_ids)


def pad(rows: Sequence[list[int]], value: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded token ids (n, longest) and each row's length."""
    import torch

    longest = max(len(r) for r in rows)
    ids = torch.full((len(rows), longest), value, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return ids, torch.tensor([len(r) for r in rows])


def causal_mask(length: int, past: int = 0) -> torch.Tensor:
    """Additive causal mask (1, 1, length, past + length): a query sees the past and itself."""
    import torch

    full = torch.full((length, past + length), float("-inf"))
    mask = torch.triu(full, diagonal=past + 1)
    return mask[None, None]


def ranked_labels(index: LabelIndex, vectors: np.ndarray, k: int) -> list[list[str]]:
    """The k labels retrieval ranks highest for each vector, best first (hard negatives)."""
    return [[c.label for c in cands] for cands in index.candidates(vectors, k)]


def train_judge(labels: Sequence[LabelInfo], examples: Sequence[LabelledText],
                index: LabelIndex, embedder: Embedder, out: Path, config: TrainConfig, *,
                base: Path | None = None, progress: bool = True,
                on_step: Callable[[int, int, float], None] | None = None) -> TrainReport:
    """Build the pairs, train the bundled judge (or `base`) and write it to `out` (GGUF).

    `index` ranks the hard negatives: the schema's index with its reviewed items as exemplars,
    as the engine would search it.
    """
    from app.rac.bundled import judge_gguf_path

    unique = list(dict.fromkeys((e.text.strip(), e.label) for e in examples if e.text.strip()))
    chosen = [LabelledText(text, label) for text, label in unique]
    vectors = embedder.embed([e.text for e in chosen])
    ranked = ranked_labels(index, vectors, config.hard_negatives + 1)
    pairs = make_pairs(chosen, labels, ranked, config)
    trainer = JudgeTrainer(base or judge_gguf_path(), threads=config.threads)
    report = trainer.train(pairs, config, progress=progress, on_step=on_step)
    trainer.save(out)
    return report
