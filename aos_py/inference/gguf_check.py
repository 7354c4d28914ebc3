"""A small, defensive GGUF header reader: what a model file holds and, when it is broken, why.

llama.cpp reports a failed load with no reason; this reads the header (metadata and tensor table, never the
weights) so the user gets a specific message: not a GGUF file, truncated, unknown architecture, unknown
tensor type. The model store also uses it to describe imported models.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

GGUF_MAGIC = b"GGUF"
KNOWN_ARCHITECTURES = ("llama", "phi3")
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_MAX_COUNT = 1 << 24
_MAX_NESTING = 8            # arrays of arrays: real files nest at most one deep
_MAX_ELEMENTS = 1 << 50     # elements in one tensor (a model that size would not fit any machine)


class GGUFFormatError(ValueError):
    """The file is not a readable GGUF (the message says where it breaks)."""


@dataclass
class TensorInfo:
    name: str
    shape: list[int]
    type_id: int
    offset: int

    @property
    def type_name(self) -> str:
        try:
            return GGMLQuantizationType(self.type_id).name
        except ValueError:
            return f"unknown type {self.type_id}"

    def nbytes(self) -> int | None:
        """Size of the tensor data, or None for an unknown type."""
        try:
            block, size = GGML_QUANT_SIZES[GGMLQuantizationType(self.type_id)]
        except (ValueError, KeyError):
            return None
        n = 1
        for d in self.shape:
            n *= d
        return n // block * size


@dataclass
class GGUFHeader:
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int = 0
    file_size: int = 0

    @property
    def architecture(self) -> str | None:
        arch = self.metadata.get("general.architecture")
        return arch if isinstance(arch, str) else None


class _Reader:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f, self.size = f, size

    def take(self, n: int, what: str) -> bytes:
        data = self.f.read(n)
        if len(data) < n:
            raise GGUFFormatError(f"the file is truncated (it ends inside the header, reading {what})")
        return data

    def scalar(self, fmt: str, what: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        n = self.scalar("<Q", what)
        if n > self.size:
            raise GGUFFormatError(f"the file is corrupt or truncated ({what} claims {n} bytes)")
        return self.take(n, what).decode("utf-8", errors="replace")

    def value(self, vtype: int, what: str, keep_arrays: bool, depth: int = 0) -> Any:
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype], what)
        if vtype == _STRING:
            return self.string(what)
        if vtype == _ARRAY:
            if depth >= _MAX_NESTING:
                raise GGUFFormatError(f"the file is corrupt: metadata {what} nests arrays more than "
                                      f"{_MAX_NESTING} deep")
            etype = self.scalar("<I", what)
            count = self.scalar("<Q", what)
            if count > self.size:
                raise GGUFFormatError(f"the file is corrupt or truncated ({what} claims {count} items)")
            items = [self.value(etype, what, keep_arrays, depth + 1) for _ in range(count)]
            return items if keep_arrays else f"<array of {count}>"
        raise GGUFFormatError(f"the file is corrupt: metadata {what} has unknown value type {vtype}")


def read_header(path: str | Path, keep_arrays: bool = False) -> GGUFHeader:
    """The metadata and tensor table of a GGUF file (arrays summarised unless keep_arrays)."""
    p = Path(path)
    size = p.stat().st_size
    with open(p, "rb") as f:
        r = _Reader(f, size)
        if size < 4 or f.read(4) != GGUF_MAGIC:
            raise GGUFFormatError("not a GGUF model file (the magic bytes 'GGUF' are missing)")
        version = r.scalar("<I", "the version")
        if version not in (2, 3):
            raise GGUFFormatError(f"unsupported GGUF version {version} (versions 2 and 3 are supported)")
        n_tensors = r.scalar("<Q", "the tensor count")
        n_kv = r.scalar("<Q", "the metadata count")
        if n_tensors > _MAX_COUNT or n_kv > _MAX_COUNT:
            raise GGUFFormatError("the file is corrupt (impossible tensor or metadata count)")
        h = GGUFHeader(version=version, file_size=size)
        for _ in range(n_kv):
            key = r.string("a metadata key")
            vtype = r.scalar("<I", key)
            h.metadata[key] = r.value(vtype, key, keep_arrays or not key.startswith("tokenizer.ggml."))
        for _ in range(n_tensors):
            name = r.string("a tensor name")
            n_dims = r.scalar("<I", name)
            if n_dims > 4:
                raise GGUFFormatError(f"the file is corrupt (tensor {name} has {n_dims} dimensions)")
            shape = [r.scalar("<Q", name) for _ in range(n_dims)]
            elements = 1
            for d in shape:
                elements *= d
            if n_dims == 0 or elements == 0 or elements > _MAX_ELEMENTS:
                raise GGUFFormatError(f"the file is corrupt (tensor {name} has an impossible shape {shape})")
            type_id = r.scalar("<I", name)
            offset = r.scalar("<Q", name)
            h.tensors.append(TensorInfo(name, shape, type_id, offset))
        align = h.metadata.get("general.alignment", 32)
        if type(align) is not int or align <= 0 or align & (align - 1):
            raise GGUFFormatError(f"the file is corrupt: general.alignment must be a positive power of two, "
                                  f"got {align!r}")
        pos = f.tell()
        h.data_offset = (pos + align - 1) // align * align
    return h


def describe_problem(path: str | Path, architectures: tuple[str, ...] | None = None) -> str | None:
    """Why the file cannot be a loadable model, or None if its header and sizes look right.
    architectures: the names the caller's engine supports (None = do not check)."""
    p = Path(path)
    if not p.is_file():
        return f"model file not found: {p}"
    try:
        h = read_header(p)
    except GGUFFormatError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot read the file: {exc.strerror or exc}"
    arch = h.architecture
    if arch is None:
        return "the file has no general.architecture"
    if architectures is not None and arch not in architectures:
        return f"unknown model architecture '{arch}' (supported: {', '.join(architectures)})"
    end = h.data_offset
    for t in h.tensors:
        n = t.nbytes()
        if n is None:
            return f"tensor {t.name} has an unknown tensor type (ggml type id {t.type_id})"
        end = max(end, h.data_offset + t.offset + n)
    if end > h.file_size:
        return f"the file is truncated: the tensor data needs {end} bytes but the file has {h.file_size}"
    return None
