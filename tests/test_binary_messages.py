"""Lua strings are bytes (issue 11 item 5): Data that is not UTF-8 reaches the target byte for byte; a tag
that is not UTF-8 text cannot travel in an AO message, so the Send fails with a clear Error instead of the
message vanishing after "Message added to outbox"."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from aos_py.client import Client, load_wallet

ALICE = load_wallet(Path(__file__).parent / "vectors" / "wallet-a.json", create=False)


@pytest.fixture
def client(tmp_path):
    c = Client.open(tmp_path / "node", services=False)
    yield c
    c.close()


def value(c: Client, pid: str, code: str) -> str:
    res = c.eval(ALICE, pid, code)
    assert not res.get("Error"), res["Error"]
    return res["Output"]["data"]


def test_binary_data_arrives_intact(client):
    a = client.spawn(ALICE, name="a")
    b = client.spawn(ALICE, name="b")
    value(client, b, 'Handlers.add("bin", "Bin", function(m) Got = m.Data end)')
    value(client, a, f'Send({{Target = "{b}", Action = "Bin", Data = "x\\255y\\0z\\128"}})')
    deadline = time.monotonic() + 10
    while value(client, b, "return Got and #Got or 0") == "0":
        assert time.monotonic() < deadline, "the binary message never arrived"
        time.sleep(0.05)
    assert value(client, b, "return Got == 'x\\255y\\0z\\128' and 'same' or 'different'") == "same"


def test_a_tag_that_is_not_text_fails_the_send_clearly_and_changes_nothing(client):
    a = client.spawn(ALICE, name="a")
    value(client, a, "Counter = 1")
    res = client.eval(ALICE, a, 'Counter = 2\nSend({Target = ao.id, Action = "Bin", ["X-T"] = "a\\255b"})')
    assert "not UTF-8 text" in res["Error"] and "X-T" in res["Error"]
    assert value(client, a, "return Counter") == "1"          # the failed message's state change is gone
    value(client, a, f'Send({{Target = "{a}", Action = "Fine", Data = "ok"}})')   # the process goes on
