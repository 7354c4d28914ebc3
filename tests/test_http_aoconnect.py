"""`aos serve` against the real JavaScript client, @permaweb/aoconnect 0.0.98 (spec §7, all 13 steps).

aoconnect is installed with npm once into ~/.cache/aos-py/npm (or $AOS_PY_NPM_CACHE); without node, npm or
network the test is skipped with the reason in the summary. The Node script fails on any request that
would leave the machine (aoconnect's hard-coded internet origins are rewritten to the local node).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from http_helpers import ROOT, Served, aoconnect_root, child_env

from aos_py.node import ans104, modules
from aos_py.node.node import Node
from aos_py.node.wallet import load_wallet

VEC = ROOT / "tests" / "vectors"
SCRIPT = ROOT / "tests" / "aoconnect_e2e.mjs"


def _seed_bad_module(data_dir: Path) -> str:
    """A module record without Input-Encoding, for spawn's negative check (step 3)."""
    node = Node(data_dir)
    try:
        tags = [t for t in modules.MODULE_TAGS if t[0] != "Input-Encoding"] + [("Name", "no-input-encoding")]
        item = ans104.build(node.key, tags=tags, data=b"a module record without Input-Encoding")
        node.gateway.add_item(item, "module")
        return item.id
    finally:
        node.close()


def _python_items(wallet, module: str, scheduler: str) -> list[str]:
    """Spawns signed here (max PSS salt, and salt 32 as browser wallets sign) for aoconnect's sendSignedMessage."""
    out = []
    for salt, w in (("max", wallet), ("32", wallet.with_salt(32))):
        tags = [("Name", f"py-{salt}"), ("Data-Protocol", "ao"), ("Variant", "ao.TN.1"), ("Type", "Process"),
                ("Module", module), ("Scheduler", scheduler)]
        out.append(base64.b64encode(ans104.build(w, tags=tags, data=" ").raw).decode())
    return out


def test_aoconnect_end_to_end(tmp_path):
    root = aoconnect_root()
    node_bin = shutil.which("node")
    data_dir = tmp_path / "node"
    bad_module = _seed_bad_module(data_dir)
    wallet = load_wallet(VEC / "wallet-a.json", create=False)
    served = Served(data_dir)
    try:
        assert served.lines[:7] == [f"{n}={served.env[n]}" for n in ("MU_URL", "CU_URL", "GATEWAY_URL", "GRAPHQL_URL",
                                                                    "SCHEDULER", "AOS_MODULE", "AUTHORITY")]
        assert served.url.startswith("http://127.0.0.1:")
        items = tmp_path / "py-items.json"
        items.write_text(json.dumps(_python_items(wallet, served.env["AOS_MODULE"], served.env["SCHEDULER"])))
        env = child_env(**served.env, AOCONNECT_ROOT=str(root), WALLET=str(VEC / "wallet-a.json"),
                        ADDRESS=wallet.address, PY_ITEMS=str(items), BAD_MODULE=bad_module)
        done = subprocess.run([node_bin, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=150)
        assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        summary = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        code = served.stop()
    assert code == 0, served.log.read_text(errors="replace")[-2000:]    # Ctrl-C stops it cleanly
    assert summary["escapes"] == []
    assert sorted(summary["steps"]) == list(range(1, 14))
    # step 1: aoconnect's signature verifies here; its id is sha256 of the signature
    raw = base64.b64decode(summary["signed"]["raw"])
    item = ans104.parse_and_verify(raw)
    assert item.id == summary["signed"]["id"] == ans104.b64url(hashlib.sha256(item.signature).digest())
    assert item.target_id == summary["processes"]["A"] and item.data == b"return 3"
    assert dict(item.tags)["Action"] == "Eval" and item.owner_address == wallet.address
    assert len(summary["pyItems"]) == 2
    # the run went through the su-router rewrite (locate) and hit each unit
    assert any(r.startswith("GET /?process-id=") for r in summary["requests"])
    for prefix in ("POST /graphql", "GET /result/", "GET /results/", "POST /dry-run", "POST /monitor/",
                   "DELETE /monitor/", "POST /?process-id="):
        assert any(r.startswith(prefix) for r in summary["requests"]), prefix
