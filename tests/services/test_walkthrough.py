"""The node's own services together, as a user meets them: a node that spawned its APM registry, wAR,
Llama Herder and workers on first boot; faucet, APM install, Llama.run paid in wAR, answer in a callback.

Everything here is real: a node in a temp dir with its services, the shipped packages/ published into its
registry, the demo model served by two wasm workers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from service_support import ALICE, wait_for

from aos_py.client import Client, ClientError, RejectedError
from aos_py.resources import lua_dir, wasm_path

pytestmark = pytest.mark.skipif(not wasm_path().is_file(), reason="wasm/llama.wasm is not built (run `make wasm`)")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"




def out(res: dict) -> str:
    assert not res.get("Error"), res.get("Error")
    o = res["Output"]
    return str(o.get("data") if isinstance(o, dict) else o)


def balance(c: Client, token: str, account: str) -> int:
    res = c.dryrun(token, tags=[("Action", "Balance"), ("Recipient", account)])
    return int(res["Messages"][0]["Data"])


def prints(c: Client, pid: str) -> str:
    return "\n".join(out(r) if not r.get("Error") else r["Error"] for r in
                     [x.get("result", x) for x in c.results(pid, limit=100, sort="DESC")])


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    c = Client.open(tmp_path_factory.mktemp("walk") / "node")
    yield c
    c.close()


@pytest.fixture(scope="module")
def user(node):
    """A user's process with the herder client installed through the apm blueprint."""
    pid = node.spawn(ALICE, name="walker")
    out(node.eval(ALICE, pid, (lua_dir() / "blueprints" / "apm.lua").read_text(encoding="utf-8")))
    wait_for(lambda: out(node.eval(ALICE, pid, "return type(apm) == 'table' and apm._version or ''")) == "2.1.0")
    out(node.eval(ALICE, pid, 'return APM.install("@sam/Llama-Herder")'))
    wait_for(lambda: out(node.eval(ALICE, pid, 'return apm.installed["@sam/Llama-Herder"] or ""')))
    return pid


def test_services_are_spawned_once_with_stable_ids(node, tmp_path):
    ids = node.services()
    assert set(ids) >= {"apm-registry", "war", "herder", "workers", "model"}
    assert len(ids["workers"]) == 2
    # every process on the node is told where the services are (spawn env tags, as Authority)
    pid = node.spawn(ALICE, name="tags")
    tags = out(node.eval(ALICE, pid, "local t = {} for _, x in ipairs(ao.env.Process.TagArray) do "
                                     "t[#t+1] = x.name .. '=' .. x.value end return table.concat(t, ';')"))
    assert f"APM-Registry={ids['apm-registry']}" in tags
    assert f"Wrapped-AR={ids['war']}" in tags and f"Llama-Herder={ids['herder']}" in tags


def test_ids_survive_a_restart_and_nothing_is_respawned(tmp_path):
    d = tmp_path / "n"
    c = Client.open(d)
    first = c.services()
    n_logged = c.node.store.query("SELECT COUNT(*) FROM log")[0][0]
    c.close()
    c = Client.open(d)
    try:
        assert c.services() == first
        assert c.node.store.query("SELECT COUNT(*) FROM log")[0][0] == n_logged   # no new spawn, no reload
    finally:
        c.close()


def test_a_newer_shipped_package_is_published_on_the_next_start(tmp_path, monkeypatch):
    import shutil

    from aos_py import resources
    from aos_py.node import packages

    d = tmp_path / "n"
    c = Client.open(d)
    c.close()
    shipped = tmp_path / "packages"
    shutil.copytree(resources.packages_dir(), shipped)
    manifest = shipped / "@aos-py" / "strings" / "manifest.json"
    meta = json.loads(manifest.read_text())
    old = meta["version"]
    major, minor, patch = (int(x) for x in old.split("."))
    meta["version"] = f"{major}.{minor}.{patch + 1}"
    manifest.write_text(json.dumps(meta))
    monkeypatch.setattr(packages, "packages_dir", lambda: shipped)
    c = Client.open(d)
    try:
        reg = c.services()["apm-registry"]
        res = c.dryrun(reg, tags=[("Action", "APM.Info")], data="@aos-py/strings")
        info = json.loads(res["Messages"][0]["Data"])
        assert info["Version"] == meta["version"]
        assert {v["Version"] for v in info["Versions"]} == {old, meta["version"]}   # nothing lost
    finally:
        c.close()


def test_faucet_credits_the_process_with_a_credit_notice(node):
    pid = node.spawn(ALICE, name="funded")
    war = node.services()["war"]
    node.faucet(pid, "1.5")
    assert balance(node, war, pid) == 1_500_000_000_000
    wait_for(lambda: out(node.eval(ALICE, pid, "return #Inbox > 0 and Inbox[#Inbox].Action or ''")) == "Credit-Notice")
    with pytest.raises(RejectedError, match="invalid wAR amount"):
        node.faucet(pid, "-1")
    with pytest.raises(RejectedError, match="no process"):
        node.faucet("B" * 43, "1")
    assert balance(node, war, pid) == 1_500_000_000_000


def test_walkthrough_pays_the_exact_fee_and_answers_in_a_callback(node, user):
    war = node.services()["war"]
    node.faucet(user, 1)
    before = balance(node, war, user)
    out(node.eval(ALICE, user, 'Llama = require("@sam/Llama-Herder")\n'
                               'Answer = nil\n'
                               'Llama.run("What is the meaning of life?", 20, function(r) Answer = r end)'))
    answer = wait_for(lambda: out(node.eval(ALICE, user, "return Answer or ''")), timeout=30)
    assert answer.strip()
    fee = int(out(node.eval(ALICE, user, 'return Llama.calculateFee("What is the meaning of life?", 20)')))
    assert fee == 1 + (6 + 20) * 1          # base + (words + tokens) * per-token, multiplier 1, empty queue
    assert balance(node, war, user) == before - fee


def test_too_little_wAR_is_said_clearly(node):
    pid = node.spawn(ALICE, name="broke")
    reg_src = (lua_dir() / "blueprints" / "apm.lua").read_text(encoding="utf-8")
    out(node.eval(ALICE, pid, reg_src))
    wait_for(lambda: out(node.eval(ALICE, pid, "return type(apm) == 'table' and apm._version or ''")) == "2.1.0")
    out(node.eval(ALICE, pid, 'return apm.install("@sam/Llama-Herder")'))
    wait_for(lambda: out(node.eval(ALICE, pid, 'return apm.installed["@sam/Llama-Herder"] or ""')))
    out(node.eval(ALICE, pid, 'Llama = require("@sam/Llama-Herder") Llama.run("hi", 5, function() end, {Fee = 10})'))
    wait_for(lambda: "too little wAR" in prints(node, pid))


def test_llama_joker_example_tells_a_joke_about_cats(node, user):
    node.faucet(user, 1)
    src = (EXAMPLES / "llama-joker.lua").read_text(encoding="utf-8")
    out(node.eval(ALICE, user, src))
    wait_for(lambda: "Ok, I think I've got a good one:" in prints(node, user), timeout=30)


def test_herd_status_and_workers(node):
    status = node.herd_status()
    assert status["engine"] == "wasm" and len(status["workers"]) == 2
    assert all(w["state"] in ("idle", "busy") for w in status["workers"])
    workers = node.herd_workers(3)
    assert len(workers) == 3
    assert len(node.herd_status()["workers"]) == 3
    assert len(node.herd_workers(2)) == 2
    with pytest.raises(ClientError, match="1 to"):
        node.herd_workers(0)
    with pytest.raises(ClientError, match="no model"):
        node.herd_use("M" * 43)


def test_many_paying_clients_each_get_one_answer_or_refund_and_supply_is_kept(node):
    war = node.services()["war"]
    clients = []
    for i in range(50):
        pid = node.spawn(ALICE, name=f"load-{i}")
        node.faucet(pid, 1)
        clients.append(pid)
    src = (Path(__file__).resolve().parents[2] / "packages" / "@sam" / "Llama-Herder" / "main.lua").read_text()
    install = 'package.loaded["@sam/Llama-Herder"] = (function()\n' + src + '\nend)()'
    for i, pid in enumerate(clients):
        out(node.eval(ALICE, pid, install))
        # every third one pays too little (a static Fee below the price): it must be refunded
        fee = "{Fee = 2}" if i % 3 == 0 else "nil"
        out(node.eval(ALICE, pid, 'Got = 0\nlocal L = require("@sam/Llama-Herder")\n'
                                  f'L.run("Tell me a joke", 8, function(r) Got = Got + 1 end, {fee})'))

    def settled():
        done = 0
        for i, pid in enumerate(clients):
            if i % 3 == 0:
                done += "refunded" in prints(node, pid)
            else:
                done += out(node.eval(ALICE, pid, "return Got")) == "1"
        return done == len(clients)
    wait_for(settled, timeout=60)
    bals = json.loads(node.dryrun(war, tags=[("Action", "Balances")])["Messages"][0]["Data"])
    supply = int(node.dryrun(war, tags=[("Action", "Total-Supply")])["Messages"][0]["Data"])
    assert sum(int(v) for v in bals.values()) == supply
    for i, pid in enumerate(clients):
        assert out(node.eval(ALICE, pid, "return Got")) == ("0" if i % 3 == 0 else "1")
    status = node.herd_status()
    assert not status["queue"] and all(w["state"] == "idle" for w in status["workers"])
    # the log replays to the same state: the token and the herder rebuilt from their logs equal the live ones
    from aos_py.node.cu import ComputeUnit

    n = node.node
    fresh = ComputeUnit(n._make_runtime, n.store.replay_rows, n.env)
    try:
        for pid in (war, node.services()["herder"], clients[1]):
            assert fresh.runtime(pid).state_dump() == n.cu.runtime(pid).state_dump()
    finally:
        fresh.close()


def test_the_herd_runs_on_llama_cpp_when_the_native_engine_is_chosen(tmp_path, monkeypatch):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python (extra 'native') is not installed")
    monkeypatch.setenv("AOS_PY_LLAMA_ENGINE", "native")
    c = Client.open(tmp_path / "native-node")
    try:
        assert c.herd_status()["engine"] == "native"
        pid = c.spawn(ALICE, name="native-user")
        c.faucet(pid, 1)
        src = (Path(__file__).resolve().parents[2] / "packages" / "@sam" / "Llama-Herder" / "main.lua").read_text()
        out(c.eval(ALICE, pid, 'package.loaded["@sam/Llama-Herder"] = (function()\n' + src + '\nend)()'))
        out(c.eval(ALICE, pid, 'L = require("@sam/Llama-Herder") L.run("<|system|>\\nTell a joke on the given '
                               'topic, on one line<|end|>\\n<|user|>\\nTopic: cats<|end|>\\n<|assistant|>\\n", 30, '
                               'function(r) Answer = r end)'))
        answer = wait_for(lambda: out(c.eval(ALICE, pid, "return Answer or ''")), timeout=60)
        assert "cat" in answer.lower()
        for w in c.services()["workers"]:
            host = c.node.cu.runtime(w)._llama_host
            assert type(host.engine).__name__ == "NativeEngine"
    finally:
        c.close()


def test_llama_king_grades_a_plea_through_the_real_herd_and_the_coin_pays(node, user):
    war = node.services()["war"]
    king = node.spawn(ALICE, name="king")
    coin = node.spawn(ALICE, name="llama-coin")
    out(node.eval(ALICE, coin, (EXAMPLES / "llama-coin.lua").read_text(encoding="utf-8")))
    out(node.eval(ALICE, coin, f'GrantWhitelist["{king}"] = true'))
    node.faucet(king, 1)
    src = (Path(__file__).resolve().parents[2] / "packages" / "@sam" / "Llama-Herder" / "main.lua").read_text()
    out(node.eval(ALICE, king, 'package.loaded["@sam/Llama-Herder"] = (function()\n' + src + '\nend)()'))
    out(node.eval(ALICE, king, f'LlamaCoin = "{coin}"'))
    assert "ready" in out(node.eval(ALICE, king, (EXAMPLES / "llama-king.lua").read_text(encoding="utf-8")))
    node.faucet(user, 1)
    out(node.eval(ALICE, user, f'Send({{Target = "{war}", Action = "Transfer", Recipient = "{king}", '
                               'Quantity = "25000000000", ["X-Petition"] = "Oh great King, my llama is hungry.", '
                               '["X-Sender-Name"] = "Alice"})'))
    verdict = wait_for(lambda: out(node.eval(ALICE, user, 'for i = #Inbox, 1, -1 do local m = Inbox[i] '
                                                        'if m.Action == "Petition-Verdict" then '
                                                        'return m.Grade .. "|" .. m.Grant end end return ""')),
                       timeout=60)
    grade, grant = verdict.split("|")
    assert 0 <= int(grade) <= 5
    payout = {0: 0, 1: 1, 2: 5, 3: 10, 4: 20, 5: 100}[int(grade)] * 10**12
    if payout:
        bal = node.dryrun(coin, tags=[("Action", "Balance"), ("Recipient", user)])["Messages"][0]["Data"]
        wait_for(lambda: int(node.dryrun(coin, tags=[("Action", "Balance"), ("Recipient", user)])
                             ["Messages"][0]["Data"]) == payout, timeout=20)
        assert int(bal) in (0, payout)
