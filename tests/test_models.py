"""Importing GGUF models into a data store and listing them (what `aos model add/list` do)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aos_py.inference import gguf_models as gm
from aos_py.inference.models import ModelImportError, format_models, import_model, list_models


class MemoryStore:
    """A content-addressed store with tag lookup, shaped like the node gateway's add_data / find."""

    def __init__(self) -> None:
        self.items: list[dict] = []

    def add(self, path: Path, tags: list[tuple[str, str]]) -> str:
        data_id = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:43]
        self.items.insert(0, {"id": data_id, "tags": list(tags)})
        return data_id

    def find(self, name: str, value: str) -> list[dict]:
        return [i for i in self.items if (name, value) in i["tags"]]


def test_import_then_list(tmp_path) -> None:
    store = MemoryStore()
    a = gm.write_random_model(tmp_path / "a.gguf", "phi3", "spm", "Q4_K", n_layer=1, n_ctx=4096)
    info = import_model(a, store.add)
    assert len(info.id) == 43
    assert (info.architecture, info.weight_type, info.context) == ("phi3", "Q4_K", 4096)
    assert info.size == a.stat().st_size and info.engines == "wasm, native"
    b = gm.write_unknown_arch_model(tmp_path / "b.gguf", arch_name="mamba")
    assert import_model(b, store.add).engines == "native"
    listed = list_models(store.find)
    assert [m.id for m in listed] == [store.items[0]["id"], info.id]
    text = format_models(listed)
    assert info.id in text and "phi3" in text and "Q4_K" in text


@pytest.mark.parametrize("kind, message", [("truncated", "truncated"), ("junk", "not a GGUF"),
                                           ("missing", "no such file"), ("bad_type", "unknown tensor type")])
def test_broken_files_are_refused_and_nothing_is_stored(tmp_path, kind: str, message: str) -> None:
    store = MemoryStore()
    path = tmp_path / "x.gguf"
    if kind == "truncated":
        gm.write_truncated_model(path, n_layer=1)
    elif kind == "junk":
        path.write_bytes(b"GGUX" + bytes(100))
    elif kind == "bad_type":
        gm.write_unknown_type_model(path)
    with pytest.raises(ModelImportError, match=message):
        import_model(path, store.add)
    assert store.items == []


def test_empty_list_says_how_to_add() -> None:
    assert "aos model add" in format_models([])
