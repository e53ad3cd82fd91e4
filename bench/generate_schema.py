"""Synthetic label schemas for scale tests, with two knobs: how many labels, how confusable.

Each label is built from words: a few *own* words, drawn without replacement from a large
vocabulary of made-up but pronounceable words, and with probability `shared` each word slot is
instead filled from a small pool of *common* words that every label draws from. At `shared=0`
labels share no vocabulary; at `shared=0.8` most of each description is words other labels use
too, so labels are hard to tell apart. Items for a label are sentences from the label's words.

    python bench/generate_schema.py --labels 10000 --shared 0.3 --out /tmp/big.yaml \
        --items 1000 --items-out /tmp/big.csv
"""

from __future__ import annotations

import argparse
import csv
import itertools
import random
from dataclasses import dataclass
from pathlib import Path

import yaml

from app.rac.prompts import LabelInfo

ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr",
          "gl", "kr", "pl", "st", "tr", "sk", "sn", "fl"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ou", "ee"]
CODAS = ["", "n", "r", "s", "t", "l", "m", "k"]
TEMPLATES = [
    "The message is about {a} and {b}, often mentioning {c}.",
    "Questions about {a} {b}, or problems with {c} and {d}.",
    "The customer asks how {a} works with {b}, or why {c} changed.",
]
ITEM_TEMPLATES = [
    "why is my {a} {b} not working",
    "how do I get {a} for my {b}",
    "I have a question about {a} and {b}",
    "can you help with {a}, the {b} is wrong",
    "my {a} shows {b} again",
]
COMMON_POOL = 60
WORDS_PER_LABEL = 4


@dataclass(frozen=True)
class Synthetic:
    labels: list[LabelInfo]
    items: list[tuple[str, str]]


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    """`size` distinct two-syllable made-up words (the embedder sees them as rare tokens)."""
    syllables = [o + v + c for o, v, c in itertools.product(ONSETS, VOWELS, CODAS)]
    if size > len(syllables) ** 2 // 2:
        raise ValueError(f"cannot make {size} distinct words")
    words: dict[str, None] = {}  # insertion-ordered set: the same seed gives the same words
    while len(words) < size:
        words[rng.choice(syllables) + rng.choice(syllables)] = None
    return list(words)


def generate(n_labels: int, shared: float = 0.3, examples: int = 2, n_items: int = 0,
             seed: int = 0) -> Synthetic:
    if not 0.0 <= shared <= 1.0:
        raise ValueError("shared must be between 0 and 1")
    rng = random.Random(seed)
    vocab = _vocabulary(rng, COMMON_POOL + n_labels * WORDS_PER_LABEL)
    common, own = vocab[:COMMON_POOL], vocab[COMMON_POOL:]
    labels: list[LabelInfo] = []
    words_of: list[list[str]] = []
    for i in range(n_labels):
        mine = own[i * WORDS_PER_LABEL:(i + 1) * WORDS_PER_LABEL]
        words = [rng.choice(common) if rng.random() < shared else w for w in mine]
        # The name keeps two own words, so names stay unique however confusable the rest is.
        name = f"{mine[0]}_{mine[1]}_{i}"
        a, b, c, d = words
        description = rng.choice(TEMPLATES).format(a=a, b=b, c=c, d=d)
        exs = tuple(rng.choice(ITEM_TEMPLATES).format(a=rng.choice(words), b=rng.choice(words))
                    for _ in range(examples))
        labels.append(LabelInfo(name, description, exs))
        words_of.append(words)
    items = []
    for _ in range(n_items):
        i = rng.randrange(n_labels)
        words = words_of[i]
        items.append((rng.choice(ITEM_TEMPLATES).format(a=rng.choice(words),
                                                        b=rng.choice(words)), labels[i].name))
    return Synthetic(labels, items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", type=int, required=True)
    ap.add_argument("--shared", type=float, default=0.3,
                    help="share of each label's words drawn from a common pool (confusability)")
    ap.add_argument("--examples", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True, help="schema YAML")
    ap.add_argument("--items", type=int, default=0, help="also write this many gold items")
    ap.add_argument("--items-out", type=Path, default=None, help="CSV (text,category)")
    args = ap.parse_args()
    syn = generate(args.labels, args.shared, args.examples, args.items, args.seed)
    doc = {"name": f"synthetic-{args.labels}",
           "description": f"Synthetic labels (shared vocabulary {args.shared:g}, seed {args.seed})",
           "labels": [{"name": x.name, "description": x.description,
                       "examples": list(x.examples)} for x in syn.labels]}
    args.out.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    if args.items_out is not None:
        with args.items_out.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "category"])
            writer.writerows(syn.items)
    print(f"{len(syn.labels)} labels -> {args.out}"
          + (f", {len(syn.items)} items -> {args.items_out}" if args.items_out else ""))


if __name__ == "__main__":
    main()
