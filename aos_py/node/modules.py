"""The module registry: which `Module` ids a Spawn may name, and the aos-py process module.

The aos-py module item is signed by a fixed, publicly derived Ed25519 key over
fixed contents; Ed25519 is deterministic, so every aos-py node holds the same
item and the module id is the same everywhere and across releases of this
format.
"""

from __future__ import annotations

import hashlib

from aos_py.node import ans104
from aos_py.node.ans104 import DataItem
from aos_py.node.wallet import Wallet

MODULE_FORMAT = "aos-py-lua53"
SUPPORTED_FORMATS = (MODULE_FORMAT,)
_SEED = hashlib.sha256(b"aos-py process module signing key, v1").digest()
MODULE_TAGS = [
    ("Data-Protocol", "ao"),
    ("Variant", "ao.TN.1"),
    ("Type", "Module"),
    ("Module-Format", MODULE_FORMAT),
    ("Input-Encoding", "JSON-1"),
    ("Output-Encoding", "JSON-1"),
    ("Memory-Limit", "1-gb"),
    ("Compute-Limit", "200000000"),
    ("Content-Type", "text/x-lua"),
    ("Name", "aos-py"),
    ("Module-Version", "1"),
]
MODULE_DATA = b"aos-py process module: Lua 5.3 (lupa) runtime with the aos process library from lua/."


def default_module_item() -> DataItem:
    """The aos-py process module's item (same bytes on every node)."""
    return ans104.build(Wallet.from_ed25519_seed(_SEED), tags=MODULE_TAGS, data=MODULE_DATA)


DEFAULT_MODULE_ID = default_module_item().id


def check_module(tags: list[tuple[str, str]] | None, module_id: str) -> dict:
    """Validate a module item's tags; returns {Id, Owner?, Tags} for the process env."""
    if tags is None:
        raise LookupError(f"unknown module {module_id!r}: no such module on this node "
                          f"(the aos-py module is {DEFAULT_MODULE_ID})")
    tagmap = dict(tags)
    if tagmap.get("Type") != "Module" or tagmap.get("Data-Protocol") != "ao":
        raise LookupError(f"{module_id} is not an ao module (Type={tagmap.get('Type')!r})")
    fmt = tagmap.get("Module-Format")
    if fmt not in SUPPORTED_FORMATS:
        raise LookupError(f"module {module_id} has Module-Format {fmt!r}; this node runs {', '.join(SUPPORTED_FORMATS)}")
    return {"Id": module_id, "Tags": [{"name": n, "value": v} for n, v in tags]}
