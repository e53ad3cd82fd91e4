"""Label indexes on disk and in memory: built once per schema content, loaded lazily.

Layout: `<root>/<embedder id>/<family>/<content hash>/`. A *family* is one schema (its versions
share it): building a new version reuses the vectors of the family's existing indexes by text hash,
so only changed labels are embedded again.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from app.rac.embedder import Embedder
from app.rac.index import LabelIndex
from app.rac.prompts import LabelInfo

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class IndexStore:
    def __init__(self, root: Path, embedder: Embedder, max_in_memory: int = 16) -> None:
        self.root = root
        self.embedder = embedder
        self.max_in_memory = max_in_memory
        self._memory: OrderedDict[tuple[str, str], LabelIndex] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple[str, str], threading.Lock] = {}

    def _dir(self, family: str, key: str) -> Path:
        return self.root / _SAFE.sub("_", self.embedder.model_id) / _SAFE.sub("_", family) / key

    def get(self, family: str, key: str, labels: Callable[[], Sequence[LabelInfo]],
            on_load: Callable[[LabelIndex], None] | None = None) -> LabelIndex:
        """The index of schema content `key` (built from `labels()` if not on disk).

        `on_load` runs once when an index enters memory (e.g. to add exemplars from a database).
        """
        slot = (family, key)
        with self._lock:
            if slot in self._memory:
                self._memory.move_to_end(slot)
                return self._memory[slot]
            build_lock = self._building.setdefault(slot, threading.Lock())
        with build_lock:  # one build per index, however many requests ask at once
            with self._lock:
                if slot in self._memory:
                    return self._memory[slot]
            index = self._load_or_build(family, key, labels)
            if on_load is not None:
                on_load(index)
            with self._lock:
                self._memory[slot] = index
                while len(self._memory) > self.max_in_memory:
                    self._memory.popitem(last=False)
                self._building.pop(slot, None)
        return index

    def _load_or_build(self, family: str, key: str,
                       labels: Callable[[], Sequence[LabelInfo]]) -> LabelIndex:
        directory = self._dir(family, key)
        if (directory / "meta.json").exists():
            try:
                return LabelIndex.load(directory)
            except (ValueError, KeyError, OSError):
                pass  # an old format or a damaged file: build it again
        index = LabelIndex.build(labels(), self.embedder, reuse=self._family_vectors(family))
        index.save(directory)
        return index

    def _family_vectors(self, family: str) -> dict[str, np.ndarray]:
        """Vectors of the family's newest index on disk, by text hash."""
        family_dir = self._dir(family, "x").parent
        if not family_dir.exists():
            return {}
        built = sorted((d for d in family_dir.iterdir() if (d / "meta.json").exists()),
                       key=lambda d: (d / "meta.json").stat().st_mtime, reverse=True)
        for directory in built[:1]:
            try:
                return LabelIndex.load(directory).vectors_by_hash()
            except (ValueError, KeyError, OSError):
                continue
        return {}

    def forget(self) -> None:
        with self._lock:
            self._memory.clear()
