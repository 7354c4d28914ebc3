"""Items over the ANS-104 tag limits are refused at the door (issue 11 item 10): too many tags, empty tag
names, over-long names or values. Before, they were accepted and their forwarding failed later."""

from __future__ import annotations

from pathlib import Path

import pytest

from aos_py.client import Client, RejectedError, load_wallet
from aos_py.node import ans104

ALICE = load_wallet(Path(__file__).parent / "vectors" / "wallet-a.json", create=False)
BASE = [("Data-Protocol", "ao"), ("Type", "Message"), ("Variant", "ao.TN.1")]


def unchecked_item(target: str, tags: list[tuple[str, str]], monkeypatch) -> bytes:
    """A validly signed item whose tags break the limits (built with the limit check switched off)."""
    with monkeypatch.context() as m:
        m.setattr(ans104, "check_tags", lambda tags: None)
        return ans104.build(ALICE, target=target, tags=tags, data=b"x").raw


@pytest.mark.parametrize("tags, reason", [
    ([("T", "v")] * 903, "too many tags"),
    ([("", "empty name")], "must not be empty"),
    ([("Long", "v" * 4000)], "longer than 3072 bytes"),
    ([("N" * 1100, "v")], "longer than 1024 bytes"),
])
def test_items_over_the_tag_limits_are_refused(tags, reason, tmp_path, monkeypatch):
    c = Client.open(tmp_path / "node", services=False)
    try:
        pid = c.spawn(ALICE, name="target")
        before = c.node.store.query("SELECT COUNT(*) FROM log")[0][0]
        raw = unchecked_item(pid, BASE + tags, monkeypatch)
        with pytest.raises(RejectedError, match=reason):
            c.submit(raw)
        assert c.node.store.query("SELECT COUNT(*) FROM log")[0][0] == before     # nothing scheduled
        ok = ans104.build(ALICE, target=pid, tags=BASE + [("Action", "Eval")], data=b"return 1").raw
        mid = c.submit(ok)
        assert c.wait_result(pid, mid)["Output"]["data"] == "1"                  # the node goes on
    finally:
        c.close()
