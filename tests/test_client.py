"""Client API contract: argument checking, error classes, and what a caller can rely on."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from aos_py.client import Client, ClientError, NotFoundError, RejectedError, ResultTimeout, load_wallet
from aos_py.node import ans104
from aos_py.node.wallet import Wallet

VEC = Path(__file__).parent / "vectors"
ALICE = load_wallet(VEC / "wallet-a.json", create=False)


@pytest.fixture
def client(tmp_path):
    c = Client.open(tmp_path / "node")
    yield c
    c.close()


def test_data_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AOS_PY_HOME", str(tmp_path / "home"))
    c = Client.open()
    try:
        assert c.data_dir == tmp_path / "home"
        assert (tmp_path / "home" / "node.db").exists()
    finally:
        c.close()


def test_spawn_tags_carry_the_node_authority_and_user_tags(client):
    pid = client.spawn(ALICE, name="tagged", tags=[("Color", "blue")])
    item = ans104.parse_and_verify(client.node.gateway.raw(pid))
    tags = dict(item.tags)
    assert tags["Name"] == "tagged" and tags["Color"] == "blue"
    assert tags["Authority"] == client.authority()
    assert tags["Module"] == client.default_module() and tags["Type"] == "Process"
    assert item.owner_address == ALICE.address


def test_send_returns_the_item_id_and_result_is_none_until_computed(client):
    pid = client.spawn(ALICE)
    mid = client.send(ALICE, pid, data="return 1", tags=[("Action", "Eval")])
    assert len(mid) == 43
    res = client.wait_result(pid, mid)
    assert client.result(pid, mid) == res
    assert client.result(pid, "Z" * 43) is None


def test_wait_result_errors(client):
    pid = client.spawn(ALICE)
    with pytest.raises(NotFoundError, match="not in the log"):
        client.wait_result(pid, "Z" * 43, timeout=0.2)
    with pytest.raises(NotFoundError, match="not in the log"):   # said after a short grace, not at timeout
        client.wait_result(pid, "Z" * 43, timeout=30)
    with pytest.raises(NotFoundError, match="no process"):
        client.wait_result("Y" * 43, "Z" * 43, timeout=0.2)
    assert issubclass(ResultTimeout, ClientError) and issubclass(ResultTimeout, TimeoutError)


def test_bad_arguments_are_refused_clearly(client):
    pid = client.spawn(ALICE)
    with pytest.raises(RejectedError, match="pairs"):
        client.send(ALICE, pid, tags=["Action=Eval"])
    with pytest.raises(RejectedError, match="expected a Wallet"):
        client.send("not a wallet", pid, data="x")
    with pytest.raises(RejectedError, match="must not be empty"):
        client.send(ALICE, pid, tags=[("Action", "")])
    with pytest.raises(NotFoundError):
        client.dryrun("Q" * 43, data="1")
    with pytest.raises(NotFoundError):
        client.results("Q" * 43)


def test_eval_error_is_reported_in_the_result(client):
    pid = client.spawn(ALICE)
    res = client.eval(ALICE, pid, "error('nope')")
    assert "nope" in res["Error"]


def test_closed_client_refuses_calls(tmp_path):
    c = Client.open(tmp_path / "n")
    c.close()
    with pytest.raises(ClientError, match="closed"):
        c.default_module()
    c.close()   # closing twice is harmless


def test_list_data_filters_by_tag(client):
    shipped = {d["id"] for d in client.list_data("Type", "Model")}   # the node's demo model
    a = client.add_data(b"model-a", tags=[("Type", "Model"), ("Name", "a")])
    b = client.add_data(b"model-b", tags=[("Type", "Model"), ("Name", "b")])
    assert {d["id"] for d in client.list_data("Type", "Model")} == {a, b} | shipped
    assert [d["id"] for d in client.list_data("Name", "b")] == [b]
    assert {d["id"] for d in client.list_data()} >= {a, b}


def test_a_connected_clients_subscriber_may_call_back_into_the_node(client):
    other = Client.open(client.data_dir)
    try:
        assert not other.hosting
        pid = other.spawn(ALICE)
        answers = []

        def on_event(event):
            if event["action"] == "Eval" and not answers:
                answers.append(other.eval(ALICE, pid, "6 * 7")["Output"]["data"])
        other.subscribe(pid, on_event)
        other.eval(ALICE, pid, "1")
        deadline = time.monotonic() + 10
        while not answers and time.monotonic() < deadline:
            time.sleep(0.02)
        assert answers == ["42"]
    finally:
        other.close()


def test_the_same_eval_twice_is_two_messages_even_with_an_ed25519_wallet(client):
    # Ed25519 signatures are deterministic: without a fresh anchor the second send
    # would be the same item (same id) and the caller would get the first, stale result.
    w = Wallet.generate("ed25519")
    pid = client.spawn(w)
    client.eval(w, pid, "N = 0")
    first = client.eval(w, pid, "N = N + 1; return N")
    second = client.eval(w, pid, "N = N + 1; return N")
    assert (first["Output"]["data"], second["Output"]["data"]) == ("1", "2")
    a = client.send(w, pid, data="x", anchor="A" * 32)
    b = client.send(w, pid, data="x", anchor="A" * 32)
    assert a == b                         # an explicit anchor makes a retry idempotent
    assert len(client.results(pid, limit=100)) == 5
