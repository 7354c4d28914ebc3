"""Models in the data store: import a GGUF file (`aos model add`) and list what is there (`aos model list`).

Independent of the node: the caller passes the store's functions, e.g. with a Client
    import_model(path, lambda p, tags: client.add_data(p, tags=tags))
    list_models(lambda name, value: client.list_data(name, value))
A process then loads the model with `Llama.load("/data/<id>")`. The file is checked before it is stored (a
broken file is refused with the reason and nothing is stored) and described in tags so listing needs no file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from aos_py.inference.gguf_check import KNOWN_ARCHITECTURES, GGUFFormatError, describe_problem, read_header

MODEL_TYPE_TAG = ("Type", "Model")
Store = Callable[[Path, list[tuple[str, str]]], str]
ListData = Callable[[str, str], list[dict]]


class ModelImportError(ValueError):
    """The file is not a model the engines can load (the message says why)."""


@dataclass
class ModelInfo:
    """What `aos model list` shows about one model."""

    id: str
    name: str
    architecture: str
    weight_type: str
    size: int
    context: int | None
    engines: str

    def line(self) -> str:
        ctx = f"ctx {self.context}" if self.context else "ctx ?"
        return (f"{self.id}  {self.name}  [{self.architecture}, {self.weight_type}, {self.size / 1e6:.1f} MB, {ctx}, "
                f"engines: {self.engines}]")


def _weight_type(tensors) -> str:
    counts: dict[str, int] = {}
    for t in tensors:
        if len(t.shape) >= 2:
            counts[t.type_name] = counts.get(t.type_name, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else "?"


def describe_file(path: str | Path) -> tuple[list[tuple[str, str]], str]:
    """Tags describing a GGUF model file, and which engines can run it. Raises ModelImportError if broken."""
    p = Path(path)
    problem = describe_problem(p)
    if problem:
        raise ModelImportError(f"{p.name}: {problem}")
    try:
        h = read_header(p)
    except GGUFFormatError as exc:  # pragma: no cover - describe_problem already read it
        raise ModelImportError(f"{p.name}: {exc}") from None
    arch = h.architecture or "?"
    name = str(h.metadata.get("general.name") or p.stem)
    ctx = h.metadata.get(f"{arch}.context_length")
    engines = "wasm, native" if arch in KNOWN_ARCHITECTURES else "native"
    tags = [MODEL_TYPE_TAG, ("Content-Type", "application/x-gguf"), ("Model-Name", name),
            ("Model-Architecture", arch), ("Model-Weight-Type", _weight_type(h.tensors)),
            ("Model-Size", str(h.file_size)), ("Model-File", p.name), ("Model-Engines", engines)]
    if isinstance(ctx, int):
        tags.append(("Model-Context", str(ctx)))
    return tags, engines


def import_model(path: str | Path, store: Store) -> ModelInfo:
    """Check a GGUF file, store it with descriptive tags, and return what was stored (its id is the /data id)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelImportError(f"no such file: {p}")
    tags, _ = describe_file(p)
    model_id = store(p, tags)
    return info_from_tags(model_id, tags)


def info_from_tags(model_id: str, tags: Iterable) -> ModelInfo:
    """A ModelInfo from the tags stored with a model (pairs, {name, value} dicts, or a mapping)."""
    t: dict[str, str] = {}
    items = tags.items() if isinstance(tags, dict) else tags
    for tag in items:
        if isinstance(tag, dict):
            t[str(tag.get("name"))] = str(tag.get("value"))
        else:
            n, v = tag
            t[str(n)] = str(v)
    ctx = t.get("Model-Context")
    return ModelInfo(id=model_id, name=t.get("Model-Name", "?"), architecture=t.get("Model-Architecture", "?"),
                     weight_type=t.get("Model-Weight-Type", "?"), size=int(t.get("Model-Size", "0") or 0),
                     context=int(ctx) if ctx and ctx.isdigit() else None, engines=t.get("Model-Engines", "?"))


def list_models(list_data: ListData) -> list[ModelInfo]:
    """Every model in the store, as the store lists them (newest first for the node's gateway)."""
    return [info_from_tags(str(item["id"]), item.get("tags") or []) for item in list_data(*MODEL_TYPE_TAG)]


def format_models(models: list[ModelInfo]) -> str:
    """The text `aos model list` prints."""
    if not models:
        return "no models yet: add one with `aos model add FILE.gguf`"
    return "\n".join(m.line() for m in models)
