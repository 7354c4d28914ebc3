"""Hostile GGUF headers at `aos model add`: each is refused with a specific message and nothing is stored
(no ZeroDivisionError, TypeError or RecursionError tracebacks, no impossible tensors accepted)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from aos_py.inference.gguf_check import describe_problem
from aos_py.repl.main import main

U32, U64, STRING, ARRAY = 4, 10, 8, 9


def s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def kv_string(key: str, value: str) -> bytes:
    return s(key) + struct.pack("<I", STRING) + s(value)


def kv_u32(key: str, value: int) -> bytes:
    return s(key) + struct.pack("<I", U32) + struct.pack("<I", value)


def gguf(kvs: list[bytes], tensors: list[tuple[str, list[int]]] = (("w", [4, 4]),), pad: int = 4096) -> bytes:
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    for name, shape in tensors:
        out += s(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        out += struct.pack("<IQ", 0, 0)      # F32 at offset 0
    return out + b"\0" * pad


def nested_array(depth: int) -> bytes:
    """A metadata value that is an array of one array of one array ... of one u32, `depth` arrays deep."""
    level = struct.pack("<I", U32) + struct.pack("<Q", 1) + struct.pack("<I", 7)
    for _ in range(depth - 1):
        level = struct.pack("<I", ARRAY) + struct.pack("<Q", 1) + level
    return s("general.deep") + struct.pack("<I", ARRAY) + level


ARCH = kv_string("general.architecture", "llama")

CASES = {
    "alignment zero": (gguf([ARCH, kv_u32("general.alignment", 0)]), "general.alignment"),
    "alignment not a power of two": (gguf([ARCH, kv_u32("general.alignment", 24)]), "general.alignment"),
    "alignment a string": (gguf([ARCH, kv_string("general.alignment", "32")]), "general.alignment"),
    "arrays nested 5,000 deep": (gguf([ARCH, nested_array(5000)]), "nests arrays"),
    "tensor of shape [0, 2^62]": (gguf([ARCH], [("w", [0, 1 << 62])]), "impossible shape"),
    "tensor of 2^62 x 2^62 elements": (gguf([ARCH], [("w", [1 << 62, 1 << 62])]), "impossible shape"),
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_header_is_refused_with_a_reason(case, tmp_path):
    raw, reason = CASES[case]
    path = tmp_path / "bad.gguf"
    path.write_bytes(raw)
    problem = describe_problem(path)
    assert problem is not None and reason in problem


@pytest.mark.parametrize("case", ["alignment zero", "arrays nested 5,000 deep", "tensor of shape [0, 2^62]"])
def test_model_add_refuses_and_stores_nothing(case, tmp_path, capsys):
    raw, reason = CASES[case]
    path = tmp_path / "bad.gguf"
    path.write_bytes(raw)
    data_dir = tmp_path / "node"
    assert main(["model", "add", str(path), "--data-dir", str(data_dir)]) == 1
    err = capsys.readouterr().err
    assert "ERROR:" in err and reason in err and "Traceback" not in err
    assert not Path(data_dir).exists() or not any((data_dir / "blobs").glob("*"))
