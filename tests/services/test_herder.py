"""The Llama Herder (lua/services/herder.lua) and its workers (lua/services/herd_worker.lua) on a real node.

Spec: ../shared/spec/apm-token-herder.md §3 and §7 behaviours 17, 20-25. Most tests use small test
processes in place of the token (it forwards Credit-Notices and records refunds), the client (it records
what it receives) and the workers (they record Inference requests; the test makes them answer), so every
message can be checked. The last tests run a real worker with the demo model and the real wAR token.
"""

from __future__ import annotations

import json
import time

import pytest
from service_support import ALICE, BOB, tags_of, wait_for

from aos_py.client import Client
from aos_py.inference.demo import demo_model_path
from aos_py.resources import lua_dir, service_source

JOKE_PROMPT = ("<|system|>\nTell a joke on the given topic, on one line<|end|>\n<|user|>\nTopic: cats<|end|>\n"
               "<|assistant|>\n")

# A process that records every message it gets (except Eval) and answers `Dump` with them as JSON.
RECORDER = r"""
Got = Got or {}
Handlers.add("Dump", { Action = "Dump" }, function(msg)
  ao.send({ Target = msg.From, Data = require("json").encode(Got) })
end)
Handlers.add("Record", function(msg)
  return msg.Tags.Action ~= "Eval" and msg.Tags.Action ~= "Dump"
end, function(msg)
  local tags = {}
  for k, v in pairs(msg.Tags) do tags[k] = v end
  table.insert(Got, { From = msg.From, Action = msg.Tags.Action, Tags = tags, Data = msg.Data })
end)
"""

# A stand-in for wAR: `Pay` (Recipient, Payer, Quantity, X-*) makes it send the recipient a Credit-Notice
# (Sender = Payer); every other message (the herder's refund Transfers) is recorded as by RECORDER.
FAKE_TOKEN = RECORDER + r"""
Handlers.prepend("Pay", { Action = "Pay" }, function(msg)
  local out = { Target = msg.Tags.Recipient, Action = "Credit-Notice", Sender = msg.Tags.Payer,
    Quantity = msg.Tags.Quantity, Data = "You received tokens" }
  for k, v in pairs(msg.Tags) do
    if k:sub(1, 2) == "X-" then out[k] = v end
  end
  ao.send(out)
end)
"""






class Herd:
    """One node shared by the module, with helpers to build the herder's world."""

    def __init__(self, client: Client) -> None:
        self.c = client
        self.token = self.process("fake-token", FAKE_TOKEN)
        self.client = self.process("client", RECORDER)

    def process(self, name: str, code: str = RECORDER, wallet=ALICE) -> str:
        pid = self.c.spawn(wallet, name=name)
        self.load(pid, code, wallet)
        return pid

    def load(self, pid: str, code: str, wallet=ALICE) -> dict:
        res = self.c.eval(wallet, pid, code)
        assert not res.get("Error"), res.get("Error")
        return res

    def herder(self, workers=(), token: str | None = None, **config) -> str:
        pid = self.c.spawn(ALICE, name="herder")
        self.load(pid, self.herder_code(workers, token or self.token, **config))
        return pid

    @staticmethod
    def herder_code(workers=(), token: str | None = None, **config) -> str:
        fields = []
        if token:
            fields.append(f'Token = "{token}"')
        if workers is not None:
            fields.append("Workers = {" + ", ".join(f'"{w}"' for w in workers) + "}")
        for k, v in config.items():
            fields.append(f"{k} = {json.dumps(v)}")
        return "ServiceConfig = {" + ", ".join(fields) + "}\n" + service_source("herder")

    def workers(self, n: int) -> list[str]:
        return [self.process(f"fake-worker-{i + 1}") for i in range(n)]

    def got(self, pid: str, action: str | None = None, sender: str | None = None) -> list[dict]:
        res = self.c.dryrun(pid, tags=[("Action", "Dump")])
        items = json.loads(res["Messages"][0]["Data"])
        return [m for m in items if (action is None or m["Action"] == action)
                and (sender is None or m["From"] == sender)]

    def status(self, herder: str) -> dict:
        res = self.c.dryrun(herder, tags=[("Action", "Herd-Status")])
        (reply,) = res["Messages"]
        assert tags_of(reply)["Action"] == "Herd-Status-Response"
        return json.loads(reply["Data"])

    def states(self, herder: str) -> dict:
        return {w["id"]: w["state"] for w in self.status(herder)["workers"]}

    def pay(self, herder: str, quantity: str, prompt: str | None = "Tell me a joke", tokens: str | None = "5",
            reference: str | None = None, payer: str | None = None, extra=()) -> None:
        tags = [("Action", "Pay"), ("Recipient", herder), ("Payer", payer or self.client), ("Quantity", quantity)]
        if prompt is not None:
            tags.append(("X-Prompt", prompt))
        if tokens is not None:
            tags.append(("X-Tokens", tokens))
        if reference is not None:
            tags.append(("X-Reference", reference))
        tags += list(extra)
        self.c.send(ALICE, self.token, tags=tags)

    def refunds(self, herder: str, reference: str | None = None) -> list[dict]:
        out = [m["Tags"] for m in self.got(self.token, "Transfer", herder)]
        return [t for t in out if reference is None or t.get("X-Reference") == reference]

    def answers(self, herder: str, reference: str | None = None) -> list[dict]:
        out = self.got(self.client, "Inference-Response", herder)
        return [m for m in out if reference is None or m["Tags"].get("X-Reference") == reference]

    def jobs(self, worker: str, herder: str) -> list[dict]:
        return self.got(worker, "Inference", herder)

    def respond(self, worker: str, herder: str, job_id: str | None, text: str,
                action: str = "Inference-Response", **tags) -> None:
        fields = {"Target": herder, "Action": action, "Data": text, **tags}
        if job_id is not None:
            fields["Job-Id"] = job_id
        lua = "{" + ", ".join(f'["{k}"] = {json.dumps(v)}' for k, v in fields.items()) + "}"
        self.load(worker, f"Send({lua})")

    def settle(self, pid: str) -> None:
        """A no-op message to `pid`; returns once it (and so everything sent before it) has been computed."""
        self.c.eval(ALICE, pid, "return 1")


@pytest.fixture(scope="module")
def herd(tmp_path_factory):
    client = Client.open(tmp_path_factory.mktemp("herder") / "node", services=False)
    try:
        yield Herd(client)
    finally:
        client.close()


@pytest.fixture(scope="module")
def model(herd):
    return herd.c.add_data(demo_model_path())


# -- 17: Info ----------------------------------------------------------------------------------------------

def test_info_reports_fees_and_queue_as_strings(herd):
    h = herd.herder([], Model="model-id-123", ModelName="Demo Llama", BaseFee=3, TokenFee=2)
    res = herd.c.dryrun(h, tags=[("Action", "Info")])
    (reply,) = res["Messages"]
    t = tags_of(reply)
    assert t["Action"] == "Info-Response"
    assert t["Name"] == "Llama-Herder"
    assert t["Version"]
    assert (t["Base-Fee"], t["Token-Fee"], t["Last-Multiplier"], t["Queue-Length"]) == ("3", "2", "1", "0")
    assert (t["Model"], t["Model-Name"]) == ("model-id-123", "Demo Llama")
    assert "Demo Llama" in reply["Data"] and "Llama 3" not in reply["Data"]


def test_info_from_a_process_gets_a_reply(herd):
    h = herd.herder([])
    herd.load(herd.client, f'Send({{Target = "{h}", Action = "Info"}})')
    (msg,) = wait_for(lambda: herd.got(herd.client, "Info-Response", h))
    assert msg["Tags"]["Queue-Length"] == "0" and msg["Tags"]["Base-Fee"] == "1"


# -- 20, 24: dispatch and forwarding -------------------------------------------------------------------------

def test_paid_request_is_dispatched_answered_and_forwarded(herd):
    (w1,) = herd.workers(1)
    h = herd.herder([w1])
    # "Tell me a joke" = 4 words, + 5 tokens + base 1 -> needed 10; 25 pays 2.5x
    herd.pay(h, "25", reference="r-20")
    (job,) = wait_for(lambda: herd.jobs(w1, h))
    assert job["Tags"]["Tokens"] == "5"
    assert job["Data"] == "Tell me a joke"
    assert job["Tags"]["Job-Id"]
    status = herd.status(h)
    assert status["workers"] == [{"id": w1, "state": "busy", "jobs": 0}]
    assert status["queue"] == [] and status["lastMultiplier"] == 2.5
    info = tags_of(herd.c.dryrun(h, tags=[("Action", "Info")])["Messages"][0])
    assert info["Last-Multiplier"] == "2.5"

    herd.respond(w1, h, job["Tags"]["Job-Id"], "Why did the cat sit on the computer?")
    (answer,) = wait_for(lambda: herd.answers(h, "r-20"))
    assert answer["Data"] == "Why did the cat sit on the computer?"
    assert answer["Tags"]["Action"] == "Inference-Response"
    status = herd.status(h)
    assert status["workers"] == [{"id": w1, "state": "idle", "jobs": 1}] and status["jobsDone"] == 1
    assert herd.refunds(h) == []

    # a second response from the (now idle) worker and one from a stranger are both ignored
    (stranger,) = herd.workers(1)
    herd.respond(w1, h, job["Tags"]["Job-Id"], "again")
    herd.respond(stranger, h, "1", "spam")
    herd.settle(h)
    herd.settle(h)
    assert len(herd.answers(h)) == 1
    assert herd.status(h)["jobsDone"] == 1


def test_stale_reference_from_a_busy_worker_is_ignored(herd):
    (w1,) = herd.workers(1)
    h = herd.herder([w1])
    herd.pay(h, "10", reference="r-stale")
    (job,) = wait_for(lambda: herd.jobs(w1, h))
    herd.respond(w1, h, "not-" + job["Tags"]["Job-Id"], "wrong job")
    herd.settle(h)
    assert herd.answers(h) == [] and herd.states(h) == {w1: "busy"}
    herd.respond(w1, h, job["Tags"]["Job-Id"], "right job")
    (answer,) = wait_for(lambda: herd.answers(h, "r-stale"))
    assert answer["Data"] == "right job"


# -- 21: insufficient payment ------------------------------------------------------------------------------

def test_insufficient_payment_is_refunded_to_the_payer(herd):
    (w1,) = herd.workers(1)
    h = herd.herder([w1])
    herd.pay(h, "9", reference="r-short")           # needed 10
    (refund,) = wait_for(lambda: herd.refunds(h, "r-short"))
    assert refund["Recipient"] == herd.client        # the payer, not the token (reference bug 2)
    assert refund["Quantity"] == "9"
    assert refund["X-Reason"] == "Insufficient payment"
    assert refund["X-Needed"] == "10"
    status = herd.status(h)
    assert status["queue"] == [] and status["workers"][0]["state"] == "idle"
    assert herd.jobs(w1, h) == []

    herd.pay(h, "10", reference="r-exact")          # exactly enough: multiplier 1
    wait_for(lambda: herd.jobs(w1, h))
    assert herd.refunds(h, "r-exact") == []


def test_huge_quantities_compare_exactly(herd):
    h = herd.herder([], BaseFee=10**15, TokenFee=10**14)
    needed = 10**15 + (4 + 5) * 10**14                # 1_900_000_000_000_000
    herd.pay(h, str(needed - 1), reference="r-big-short")
    herd.pay(h, str(needed), reference="r-big-ok")
    herd.pay(h, "3" + "0" * 40, reference="r-huge")
    herd.pay(h, "1" + "0" * 70, reference="r-too-many-digits")   # wAR allows at most 70 digits
    herd.pay(h, "0x100000000000000000", reference="r-hex")
    (refund,) = wait_for(lambda: herd.refunds(h, "r-big-short"))
    assert refund["Quantity"] == str(needed - 1) and refund["X-Needed"] == str(needed)
    wait_for(lambda: len(herd.status(h)["queue"]) == 2)
    assert [j["reference"] for j in herd.status(h)["queue"]] == ["r-huge", "r-big-ok"]
    for ref, q in (("r-too-many-digits", "1" + "0" * 70), ("r-hex", "0x100000000000000000")):
        (refund,) = wait_for(lambda ref=ref: herd.refunds(h, ref))
        assert (refund["Quantity"], refund["X-Reason"]) == (q, "Invalid quantity")
    assert len(herd.refunds(h)) == 3


# -- 22: only the token's Credit-Notices count ---------------------------------------------------------------

def test_credit_notice_not_from_the_token_is_ignored(herd):
    (w1,) = herd.workers(1)
    h = herd.herder([w1])
    notice = [("Action", "Credit-Notice"), ("Sender", herd.client), ("Quantity", "1000"),
              ("X-Prompt", "Tell me a joke"), ("X-Tokens", "5"), ("X-Reference", "forged")]
    herd.c.send(ALICE, h, tags=notice)               # a wallet
    herd.c.send(BOB, h, tags=notice)
    forger = herd.process("forger", FAKE_TOKEN)       # a process speaking the token's language
    herd.c.send(ALICE, forger, tags=[("Action", "Pay"), ("Recipient", h), ("Payer", herd.client),
                                     ("Quantity", "1000"), ("X-Prompt", "hi"), ("X-Tokens", "5")])
    herd.settle(forger)
    herd.settle(h)
    herd.settle(h)
    status = herd.status(h)
    assert status["queue"] == [] and status["workers"][0]["state"] == "idle"
    assert herd.jobs(w1, h) == [] and herd.refunds(h) == []


# -- 23: queue order and one dispatch pass for every idle worker ----------------------------------------------

def test_queue_order_by_multiplier_and_full_dispatch(herd):
    h = herd.herder([])
    # "one two three four" + 5 tokens + 1 -> needed 10: pays 20, 40, 20, 30 -> 2.0a, 4.0, 2.0c, 3.0
    for ref, q in (("a", "20"), ("b", "40"), ("c", "20"), ("d", "30")):
        herd.pay(h, q, prompt="one two three four", reference=ref)
    wait_for(lambda: len(herd.status(h)["queue"]) == 4)
    queue = herd.status(h)["queue"]
    assert [j["reference"] for j in queue] == ["b", "d", "a", "c"]
    assert [j["multiplier"] for j in queue] == [4, 3, 2, 2]
    info = tags_of(herd.c.dryrun(h, tags=[("Action", "Info")])["Messages"][0])
    assert info["Queue-Length"] == "4"

    # four idle workers join at once (a reload with a new herd): all four jobs go out in that one message
    ws = herd.workers(4)
    herd.load(h, herd.herder_code(ws))
    status = herd.status(h)
    assert status["queue"] == []
    assert [w["state"] for w in status["workers"]] == ["busy"] * 4
    assert status["lastMultiplier"] == 2
    for w, prompt_ref in zip(ws, ["b", "d", "a", "c"], strict=True):
        (job,) = wait_for(lambda w=w: herd.jobs(w, h))
        assert job["Data"] == "one two three four" and job["Tags"]["Tokens"] == "5"
        herd.respond(w, h, job["Tags"]["Job-Id"], f"answer {prompt_ref}")
    for ref in "abcd":
        (answer,) = wait_for(lambda ref=ref: herd.answers(h, ref))
        assert answer["Data"] == f"answer {ref}"


def test_freed_worker_takes_the_next_queued_job(herd):
    (w1,) = herd.workers(1)
    h = herd.herder([w1])
    herd.pay(h, "10", reference="first")
    herd.pay(h, "10", reference="second")
    (job1,) = wait_for(lambda: herd.jobs(w1, h))
    wait_for(lambda: len(herd.status(h)["queue"]) == 1)
    herd.respond(w1, h, job1["Tags"]["Job-Id"], "one")
    jobs = wait_for(lambda: len(herd.jobs(w1, h)) == 2 and herd.jobs(w1, h))
    herd.respond(w1, h, jobs[1]["Tags"]["Job-Id"], "two")
    wait_for(lambda: herd.answers(h, "second"))
    assert [m["Data"] for m in herd.answers(h)] == ["one", "two"]
    assert [m["Tags"]["X-Reference"] for m in herd.answers(h)] == ["first", "second"]


# -- 25: robustness --------------------------------------------------------------------------------------------

def test_request_without_reference_completes(herd):
    (w1,) = herd.workers(1)
    h = herd.herder([w1])
    herd.pay(h, "10", reference=None)
    (job,) = wait_for(lambda: herd.jobs(w1, h))
    herd.respond(w1, h, job["Tags"]["Job-Id"], "no ref answer")
    (answer,) = wait_for(lambda: herd.answers(h))
    assert answer["Data"] == "no ref answer" and "X-Reference" not in answer["Tags"]
    assert herd.states(h) == {w1: "idle"}


def test_invalid_requests_are_refunded_in_full(herd):
    h = herd.herder([], MaxTokens=50, MaxPromptBytes=100)
    cases = {
        "no-tokens": (dict(tokens=None), "Missing X-Tokens"),
        "text-tokens": (dict(tokens="five"), "Invalid X-Tokens"),
        "float-tokens": (dict(tokens="1.5"), "Invalid X-Tokens"),
        "negative-tokens": (dict(tokens="-3"), "Invalid X-Tokens"),
        "zero-tokens": (dict(tokens="0"), "X-Tokens must be at least 1"),
        "many-tokens": (dict(tokens="51"), "Too many tokens (max 50)"),
        "huge-tokens": (dict(tokens="1" + "0" * 30), "Too many tokens (max 50)"),
        "no-prompt": (dict(prompt=None), "Missing X-Prompt"),
        "long-prompt": (dict(prompt="x" * 101), "Prompt too long (max 100 bytes)"),
    }
    for ref, (kw, _) in cases.items():
        herd.pay(h, "1000", reference=ref, **kw)
    herd.pay(h, "1000", tokens="50", prompt="y" * 100, reference="at-limits")
    wait_for(lambda: len(herd.refunds(h)) == len(cases))
    for ref, (_, reason) in cases.items():
        (refund,) = herd.refunds(h, ref)
        assert (refund["Recipient"], refund["Quantity"], refund["X-Reason"]) == (herd.client, "1000", reason), ref
    wait_for(lambda: len(herd.status(h)["queue"]) == 1)
    assert [j["reference"] for j in herd.status(h)["queue"]] == ["at-limits"]


def test_full_queue_refunds(herd):
    h = herd.herder([], MaxQueue=2)
    for ref in ("q1", "q2", "q3"):
        herd.pay(h, "10", reference=ref)
    (refund,) = wait_for(lambda: herd.refunds(h, "q3"))
    assert refund["X-Reason"] == "Queue full" and refund["Quantity"] == "10"
    assert [j["reference"] for j in herd.status(h)["queue"]] == ["q1", "q2"]
    assert herd.refunds(h, "q1") == [] and herd.refunds(h, "q2") == []


def test_timed_out_worker_is_reclaimed_by_a_later_message(herd):
    (w1,) = herd.workers(1)
    h = herd.herder([w1], Timeout=1000)
    herd.pay(h, "10", reference="slow")
    herd.pay(h, "10", reference="next")
    (job1,) = wait_for(lambda: herd.jobs(w1, h))
    wait_for(lambda: len(herd.status(h)["queue"]) == 1)
    time.sleep(1.2)
    herd.c.send(BOB, h, tags=[("Action", "Info")])   # any message carries the clock forward
    (refund,) = wait_for(lambda: herd.refunds(h, "slow"))
    assert refund["X-Reason"] == "Worker timed out" and refund["Recipient"] == herd.client
    assert refund["Quantity"] == "10"
    # the reclaimed worker took the queued job in the same message
    jobs = wait_for(lambda: len(herd.jobs(w1, h)) == 2 and herd.jobs(w1, h))
    assert herd.status(h)["queue"] == [] and herd.states(h) == {w1: "busy"}
    # the late answer to the reclaimed job is not forwarded; the current job's answer is
    herd.respond(w1, h, job1["Tags"]["Job-Id"], "too late")
    herd.respond(w1, h, jobs[1]["Tags"]["Job-Id"], "in time")
    (answer,) = wait_for(lambda: herd.answers(h, "next"))
    assert answer["Data"] == "in time"
    herd.settle(h)
    assert herd.answers(h, "slow") == [] and len(herd.answers(h)) == 1
    assert herd.refunds(h, "next") == []


def test_timed_out_worker_is_reclaimed_by_cron(herd):
    (w1,) = herd.workers(1)
    h = herd.herder([w1], Timeout=1000)
    herd.pay(h, "10", reference="cron-slow")
    (job,) = wait_for(lambda: herd.jobs(w1, h))
    herd.c.send(ALICE, h, tags=[("Action", "Cron")])   # too early: nothing happens
    herd.settle(h)
    assert herd.refunds(h) == [] and herd.states(h) == {w1: "busy"}
    time.sleep(1.2)
    herd.c.send(ALICE, h, tags=[("Action", "Cron")])
    (refund,) = wait_for(lambda: herd.refunds(h, "cron-slow"))
    assert refund["X-Reason"] == "Worker timed out"
    assert herd.states(h) == {w1: "idle"}
    herd.respond(w1, h, job["Tags"]["Job-Id"], "late")
    herd.settle(h)
    assert herd.answers(h) == []


def test_late_answer_before_any_reclaim_is_still_delivered(herd):
    (w1,) = herd.workers(1)
    h = herd.herder([w1], Timeout=1000)
    herd.pay(h, "10", reference="late-ok")
    (job,) = wait_for(lambda: herd.jobs(w1, h))
    time.sleep(1.2)
    herd.respond(w1, h, job["Tags"]["Job-Id"], "slow but here")
    (answer,) = wait_for(lambda: herd.answers(h, "late-ok"))
    assert answer["Data"] == "slow but here"
    assert herd.refunds(h) == [] and herd.states(h) == {w1: "idle"}


def test_worker_error_refunds_the_client(herd):
    (w1,) = herd.workers(1)
    h = herd.herder([w1])
    herd.pay(h, "12", reference="boom")
    (job,) = wait_for(lambda: herd.jobs(w1, h))
    herd.respond(w1, h, job["Tags"]["Job-Id"], "", action="Inference-Error", Error="model exploded")
    (refund,) = wait_for(lambda: herd.refunds(h, "boom"))
    assert refund["X-Reason"] == "Worker error: model exploded" and refund["Quantity"] == "12"
    assert herd.states(h) == {w1: "idle"} and herd.answers(h) == []


# -- administration -----------------------------------------------------------------------------------------

def test_add_remove_worker_and_set_model(herd):
    h = herd.herder([])
    w1, w2 = herd.workers(2)
    herd.pay(h, "10", reference="waiting")
    wait_for(lambda: len(herd.status(h)["queue"]) == 1)

    herd.c.send(BOB, h, tags=[("Action", "Add-Worker"), ("Worker", w1)])   # not the owner
    herd.settle(h)
    assert herd.status(h)["workers"] == []

    res = herd.c.wait_result(h, herd.c.send(ALICE, h, tags=[("Action", "Add-Worker"), ("Worker", w1)]))
    (reply,) = [m for m in res["Messages"] if tags_of(m)["Action"] == "Add-Worker-Response"]
    assert tags_of(reply)["Worker"] == w1 and reply["Target"] == ALICE.address
    status = herd.status(h)
    assert status["workers"] == [{"id": w1, "state": "busy", "jobs": 0}] and status["queue"] == []
    wait_for(lambda: herd.jobs(w1, h))

    herd.c.send(ALICE, h, tags=[("Action", "Add-Worker"), ("Worker", w2)])
    herd.settle(h)
    assert herd.states(h) == {w1: "busy", w2: "idle"}
    herd.c.send(ALICE, h, tags=[("Action", "Remove-Worker"), ("Worker", w2)])
    herd.settle(h)
    assert herd.states(h) == {w1: "busy"}

    herd.c.send(BOB, h, tags=[("Action", "Set-Model"), ("Model-Id", "evil"), ("Model-Name", "Evil")])
    herd.c.send(ALICE, h, tags=[("Action", "Set-Model"), ("Model-ID", "m-2"), ("Model-Name", "Model Two")])
    herd.settle(h)
    (init,) = wait_for(lambda: herd.got(w1, "Init", h))
    assert init["Tags"]["Model-Id"] == "m-2"
    assert herd.got(w2, "Init", h) == []             # removed from the herd
    status = herd.status(h)
    assert (status["model"], status["modelName"]) == ("m-2", "Model Two")
    info = tags_of(herd.c.dryrun(h, tags=[("Action", "Info")])["Messages"][0])
    assert (info["Model"], info["Model-Name"]) == ("m-2", "Model Two") and "Model Two" in \
        herd.c.dryrun(h, tags=[("Action", "Info")])["Messages"][0]["Data"]


def test_reload_keeps_state_and_inits_workers(herd):
    (w1,) = herd.workers(1)
    h = herd.herder([], Model="m-1")
    herd.pay(h, "10", reference="kept")
    wait_for(lambda: len(herd.status(h)["queue"]) == 1)
    herd.load(h, herd.herder_code([w1], Model="m-1"))
    (init,) = wait_for(lambda: herd.got(w1, "Init", h))
    assert init["Tags"]["Model-Id"] == "m-1"
    (job,) = wait_for(lambda: herd.jobs(w1, h))
    herd.respond(w1, h, job["Tags"]["Job-Id"], "after reload")
    wait_for(lambda: herd.answers(h, "kept"))
    assert herd.status(h)["jobsDone"] == 1


# -- real workers, the demo model and the wAR token ----------------------------------------------------------------

def worker_code(herder: str, model: str | None) -> str:
    fields = [f'Herder = "{herder}"']
    if model:
        fields.append(f'Model = "{model}"')
    return "ServiceConfig = {" + ", ".join(fields) + "}\n" + service_source("herd_worker")


def test_real_worker_generates_with_the_demo_model(herd, model):
    worker = herd.c.spawn(ALICE, name="worker")
    h = herd.c.spawn(ALICE, name="herder")
    res = herd.load(worker, worker_code(h, model))
    assert "loaded" in res["Output"]["data"]
    herd.load(h, herd.herder_code([worker], herd.token, Model=model, ModelName="demo"))
    # the herder's Init on load reaches the worker, which answers Worker-Initialized
    wait_for(lambda: herd.status(h)["workers"][0].get("model") == model)

    herd.pay(h, "1000", prompt=JOKE_PROMPT, tokens="24", reference="joke")
    (answer,) = wait_for(lambda: herd.answers(h, "joke"), timeout=60)
    text = answer["Data"]
    print("demo model:", repr(text))
    assert text.strip() and "<|end|>" not in text
    assert herd.states(h) == {worker: "idle"}
    assert herd.c.eval(ALICE, worker, "return JobsDone")["Output"]["data"] == "1"

    # only the herder may ask for inference, only the owner or the herder may Init
    herd.c.send(ALICE, worker, tags=[("Action", "Inference"), ("Tokens", "3")], data=JOKE_PROMPT)
    herd.c.send(BOB, worker, tags=[("Action", "Init"), ("Model-Id", "nope")])
    herd.settle(worker)
    assert herd.c.eval(ALICE, worker, "return JobsDone")["Output"]["data"] == "1"
    assert herd.c.eval(ALICE, worker, "return Worker.Loaded")["Output"]["data"] == model


def test_real_worker_reports_errors_and_init_replies(herd, model):
    probe = herd.process("probe")                  # plays the herder, to see the worker's replies
    worker = herd.c.spawn(ALICE, name="worker")
    herd.load(worker, worker_code(probe, None))
    # no model yet: an Inference fails cleanly with Inference-Error
    herd.load(probe, f'Send({{Target = "{worker}", Action = "Inference", Tokens = "3", ["Job-Id"] = "e1", '
                     f'Data = "hello"}})')
    (err,) = wait_for(lambda: herd.got(probe, "Inference-Error", worker))
    assert err["Tags"]["Job-Id"] == "e1" and "no model" in err["Tags"]["Error"]
    # Init from the herder with a normalised Model-Id tag loads the model
    herd.load(probe, f'Send({{Target = "{worker}", Action = "Init", ["Model-ID"] = "{model}"}})')
    (ok,) = wait_for(lambda: herd.got(probe, "Worker-Initialized", worker), timeout=30)
    assert ok["Tags"]["Model-Id"] == model
    herd.load(probe, f'Send({{Target = "{worker}", Action = "Inference", Tokens = "4", ["Job-Id"] = "e2", '
                     f'Data = {json.dumps(JOKE_PROMPT)}}})')
    (resp,) = wait_for(lambda: herd.got(probe, "Inference-Response", worker), timeout=60)
    assert resp["Tags"]["Job-Id"] == "e2" and 1 <= int(resp["Tags"]["Tokens"]) <= 4
    # a model that does not exist: Init-Error, and the loaded model stays
    herd.load(probe, f'Send({{Target = "{worker}", Action = "Init", ["Model-Id"] = "missing-model"}})')
    (bad,) = wait_for(lambda: herd.got(probe, "Init-Error", worker))
    assert bad["Tags"]["Model-Id"] == "missing-model" and bad["Tags"]["Error"]
    assert herd.c.eval(ALICE, worker, "return Worker.Loaded")["Output"]["data"] == model


def war_code() -> str:
    return 'ServiceConfig = {Name = "Wrapped AR", Ticker = "wAR", Denomination = "12"}\n' + service_source("war")


@pytest.mark.skipif(not (lua_dir() / "services" / "war.lua").exists(), reason="lua/services/war.lua not written yet")
def test_end_to_end_with_wAR(herd, model):
    war = herd.process("wAR", war_code())
    user = herd.process("user")
    herd.c.send(ALICE, war, tags=[("Action", "Mint"), ("Recipient", user), ("Quantity", "5000")])
    worker = herd.c.spawn(ALICE, name="worker")
    h = herd.c.spawn(ALICE, name="herder")
    herd.load(worker, worker_code(h, model))
    herd.load(h, herd.herder_code([worker], war, Model=model, ModelName="demo"))

    def balance(pid):
        res = herd.c.dryrun(war, tags=[("Action", "Balance"), ("Recipient", pid)])
        return tags_of(res["Messages"][0]).get("Balance")

    wait_for(lambda: balance(user) == "5000")
    pay = 'Send({Target = "%s", Action = "Transfer", Recipient = "%s", Quantity = "%s", ["X-Prompt"] = %s, ' \
          '["X-Tokens"] = "%s", ["X-Reference"] = "%s"})'
    # too little: the payment comes back to the user
    herd.load(user, pay % (war, h, "3", json.dumps("Tell me a joke"), "5", "0"))
    wait_for(lambda: herd.got(user, "Credit-Notice", war) and len(herd.got(user, "Credit-Notice", war)) == 2)
    refund = herd.got(user, "Credit-Notice", war)[1]["Tags"]
    assert refund["Quantity"] == "3" and refund["X-Reason"] == "Insufficient payment"
    assert refund["X-Needed"] == "10" and refund["X-Reference"] == "0"
    wait_for(lambda: balance(user) == "5000" and balance(h) in ("0", None))

    herd.load(user, pay % (war, h, "100", json.dumps(JOKE_PROMPT), "20", "1"))
    (answer,) = wait_for(lambda: [m for m in herd.got(user, "Inference-Response", h)
                                  if m["Tags"].get("X-Reference") == "1"], timeout=60)
    assert answer["Data"].strip()
    assert balance(user) == "4900" and balance(h) == "100"
