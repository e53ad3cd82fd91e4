"""Is this file a whole GGUF model? Read its header and tensor table (no model library needed)
and check that the file is exactly as long as its tensors say.

A GGUF file is: magic `GGUF`, a version, the counts of tensors and metadata entries, the metadata,
one info record per tensor (name, shape, type, offset into the data section), padding to the
alignment, then the tensor data. The data section must hold the tensor at the largest offset in
full, so a file cut short (a chunk missing from an assembled model) is found without loading it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
"""Versions llama.cpp reads (version 1 used 32-bit counts and is long gone)."""
DEFAULT_ALIGNMENT = 32

# ggml tensor types: (bytes per block, values per block). The types models are shipped in; a
# tensor of another type is checked by its offset only.
_BLOCKS: dict[int, tuple[int, int]] = {
    0: (4, 1), 1: (2, 1),  # F32, F16
    2: (18, 32), 3: (20, 32), 6: (22, 32), 7: (24, 32), 8: (34, 32), 9: (36, 32),  # Q4_0..Q8_1
    10: (84, 256), 11: (110, 256), 12: (144, 256), 13: (176, 256), 14: (210, 256),  # Q2_K..Q6_K
    15: (292, 256),  # Q8_K
    24: (1, 1), 25: (2, 1), 26: (4, 1), 27: (8, 1), 28: (8, 1),  # I8, I16, I32, I64, F64
    30: (2, 1),  # BF16
}
# Metadata value types: fixed sizes; 8 = string, 9 = array.
_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
_MAX_STRING = 1 << 26  # a longer key or value means a corrupt length field, not a real model


class GGUFError(ValueError):
    """The file is not a complete, readable GGUF model; the message says what is wrong."""


@dataclass(frozen=True)
class GGUFInfo:
    version: int
    tensors: int
    metadata: int
    architecture: str | None
    data_offset: int
    """Where the tensor data starts."""
    expected_size: int | None
    """File size the tensor table implies (None when the last tensor's type is unknown)."""
    size: int


def read_gguf_info(path: Path) -> GGUFInfo:
    """The header of `path`, after checking the file is complete; GGUFError if it is not."""
    size = path.stat().st_size
    with path.open("rb") as f:
        reader = _Reader(f, size)
        if reader.read(4) != MAGIC:
            raise GGUFError(f"{path.name} is not a GGUF file (it does not start with 'GGUF')")
        version = reader.u32()
        if version not in SUPPORTED_VERSIONS:
            raise GGUFError(f"{path.name}: GGUF version {version} is not supported "
                            f"(supported: {', '.join(map(str, SUPPORTED_VERSIONS))})")
        tensors, entries = reader.u64(), reader.u64()
        if tensors > 1_000_000 or entries > 1_000_000:
            raise GGUFError(f"{path.name}: implausible header ({tensors} tensors, "
                            f"{entries} metadata entries): the file is corrupt")
        alignment, architecture = DEFAULT_ALIGNMENT, None
        for _ in range(entries):
            key = reader.string()
            kind = reader.u32()
            if key == "general.alignment" and kind in (4, 5):
                alignment = reader.u32()
            elif key == "general.architecture" and kind == _STRING:
                architecture = reader.string()
            else:
                reader.skip_value(kind)
        last_offset, last_bytes = -1, 0
        for _ in range(tensors):
            reader.string()
            dims = [reader.u64() for _ in range(reader.u32())]
            kind, offset = reader.u32(), reader.u64()
            if offset > last_offset:
                last_offset, last_bytes = offset, _tensor_bytes(kind, dims)
        data_offset = -(-reader.position // alignment) * alignment
    expected = None
    if tensors and last_bytes >= 0:
        expected = data_offset + last_offset + last_bytes
    info = GGUFInfo(version, tensors, entries, architecture, data_offset, expected, size)
    needed = expected if expected is not None else data_offset + max(last_offset, 0) + 1
    if size < needed:
        raise GGUFError(f"{path.name} is truncated: {size:,} bytes, its tensors need "
                        f"{needed:,} (a missing or short chunk?)")
    if expected is not None and size > expected + alignment:
        raise GGUFError(f"{path.name} has {size - expected:,} bytes after its last tensor "
                        f"(a chunk added twice or out of order?)")
    return info


def _tensor_bytes(kind: int, dims: list[int]) -> int:
    """Bytes of a tensor of this ggml type and shape; -1 when the type is not in the table."""
    if kind not in _BLOCKS:
        return -1
    block_bytes, block_values = _BLOCKS[kind]
    values = 1
    for d in dims:
        values *= d
    return values // block_values * block_bytes


class _Reader:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f, self._size, self.position = f, size, 0

    def read(self, n: int) -> bytes:
        data = self._f.read(n)
        if len(data) != n:
            raise GGUFError(f"the file ends inside its header (at byte {self.position + len(data)}"
                            f" of {self._size}): truncated or not a model")
        self.position += n
        return data

    def u32(self) -> int:
        return int(struct.unpack("<I", self.read(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.read(8))[0])

    def string(self) -> str:
        n = self.u64()
        if n > _MAX_STRING:
            raise GGUFError(f"a header string claims {n:,} bytes: the file is corrupt")
        return self.read(n).decode("utf-8", "replace")

    def skip(self, n: int) -> None:
        if self.position + n > self._size:
            raise GGUFError("the file ends inside its header: truncated or not a model")
        self._f.seek(n, 1)
        self.position += n

    def skip_value(self, kind: int) -> None:
        if kind in _SCALARS:
            self.skip(_SCALARS[kind])
        elif kind == _STRING:
            n = self.u64()
            if n > _MAX_STRING:
                raise GGUFError(f"a header string claims {n:,} bytes: the file is corrupt")
            self.skip(n)
        elif kind == _ARRAY:
            item, count = self.u32(), self.u64()
            if item in _SCALARS:
                self.skip(_SCALARS[item] * count)
            else:
                for _ in range(count):
                    self.skip_value(item)
        else:
            raise GGUFError(f"unknown metadata value type {kind}: the file is corrupt")
