"""The @sam/Llama-Herder client package and the Llama examples, on a real node with real processes.

A stand-in wAR token and a stand-in herder (small Lua processes written below) record what reaches
them and answer the way the real ones do: the token sends Debit-/Credit-Notices (X- tags copied) or a
Transfer-Error; the herder answers Info with Info-Response and, when a test says so, sends
Inference-Response with the request's X-Reference, or refunds a payment through the token. Covers spec
apm-token-herder.md §3.2/§3.3 (behaviours 18, 19, 24 client side, bug 6), refunds and failed payments,
argument checks, and §5 (Llama Joker, King, Coin) plus the chatbot example.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from service_support import ALICE, wait_for

from aos_py.client import Client

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGE = ROOT / "packages" / "@sam" / "Llama-Herder"
EXAMPLES = ROOT / "examples"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NETWORK_HERDER = "wh5vB2IbqmIBUqgodOaTvByNFDPr73gbUq1bVOUtCrw"
NETWORK_TOKEN = "xU9zFkq3X2ZQ6olwNVvr1vUWIjc3kXTWr7xKQD6dh10"
LLAMA = 10**12

TOKEN_LUA = r"""
json = require("json")
Transfers = Transfers or {}
Refuse = Refuse or false        -- false | "reply" (msg.reply, keeps X-Reference) | "bare" (no X-Reference)
Handlers.add("Transfer", "Transfer", function(msg)
  local rec = { From = msg.From, Recipient = msg.Recipient, Quantity = msg.Quantity }
  for k, v in pairs(msg.Tags) do if k:sub(1, 2) == "X-" then rec[k] = v end end
  table.insert(Transfers, rec)
  if Refuse == "reply" then
    return msg.reply({ Action = "Transfer-Error", ["Message-Id"] = msg.Id, Error = "Insufficient Balance!" })
  elseif Refuse == "bare" then
    return ao.send({ Target = msg.From, Action = "Transfer-Error", ["Message-Id"] = msg.Id,
                     Error = "Insufficient Balance!" })
  end
  local debit = { Action = "Debit-Notice", Recipient = msg.Recipient, Quantity = msg.Quantity }
  local credit = { Target = msg.Recipient, Action = "Credit-Notice", Sender = msg.From, Quantity = msg.Quantity }
  for k, v in pairs(msg.Tags) do if k:sub(1, 2) == "X-" then debit[k] = v; credit[k] = v end end
  msg.reply(debit)
  ao.send(credit)
end)
function TransfersFrom(who)
  local out = {}
  for _, t in ipairs(Transfers) do if t.From == who then table.insert(out, t) end end
  return json.encode(out)
end
return "token ready"
"""

HERDER_LUA = r"""
json = require("json")
Prices = { ["Base-Fee"] = "1", ["Token-Fee"] = "1", ["Last-Multiplier"] = "1", ["Queue-Length"] = "3" }
InfoRequests = InfoRequests or {}
Jobs = Jobs or {}
Handlers.add("Info", "Info", function(msg)
  table.insert(InfoRequests, msg.From)
  ao.send({ Target = msg.From, Action = "Info-Response", Name = "Llama-Herder", Version = "0.2",
            ["Base-Fee"] = Prices["Base-Fee"], ["Token-Fee"] = Prices["Token-Fee"],
            ["Last-Multiplier"] = Prices["Last-Multiplier"], ["Queue-Length"] = Prices["Queue-Length"],
            Data = "stand-in herder" })
end)
Handlers.add("Paid", function(msg) return msg.Action == "Credit-Notice" and msg.From == Token end, function(msg)
  table.insert(Jobs, { client = msg.Sender, ref = msg["X-Reference"], prompt = msg["X-Prompt"],
                       tokens = msg["X-Tokens"], quantity = msg.Quantity })
end)
function InfoCount(who)
  local n = 0
  for _, w in ipairs(InfoRequests) do if w == who then n = n + 1 end end
  return n
end
function JobsOf(who)
  local out = {}
  for _, j in ipairs(Jobs) do if j.client == who then table.insert(out, j) end end
  return json.encode(out)
end
function Respond(client, ref, text)
  ao.send({ Target = client, Action = "Inference-Response", ["X-Reference"] = ref, Data = text })
end
function Refund(client, ref, quantity, reason)
  ao.send({ Target = Token, Action = "Transfer", Recipient = client, Quantity = quantity,
            ["X-Reason"] = reason, ["X-Needed"] = "100", ["X-Reference"] = ref })
end
return "herder ready"
"""

PRICES_DEFAULT = {"Base-Fee": "1", "Token-Fee": "1", "Last-Multiplier": "1", "Queue-Length": "3"}


def lua_str(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid Lua string literal for this text




class Net:
    def __init__(self, c: Client) -> None:
        self.c = c
        self.token = c.spawn(ALICE, name="stand-in-war")
        self.herder = c.spawn(ALICE, name="stand-in-herder")
        self.ev(self.token, TOKEN_LUA)
        self.ev(self.herder, HERDER_LUA)
        self.ev(self.herder, f"Token = {lua_str(self.token)}")
        self.n = 0

    # -- processes and evals -------------------------------------------------

    def ev(self, pid: str, code: str) -> str:
        res = self.c.eval(ALICE, pid, code)
        assert not res.get("Error"), ANSI.sub("", str(res.get("Error")))
        out = res.get("Output") or {}
        return out.get("data", "") if isinstance(out, dict) else str(out)

    def ev_error(self, pid: str, code: str) -> str:
        res = self.c.eval(ALICE, pid, code)
        assert res.get("Error"), f"expected an error from {code!r}, got {res.get('Output')!r}"
        return ANSI.sub("", str(res["Error"]))

    def spawn(self, tags=None, install: bool = True) -> str:
        self.n += 1
        if tags is None:
            tags = [("Llama-Herder", self.herder), ("Wrapped-AR", self.token)]
        pid = self.c.spawn(ALICE, name=f"user{self.n}", tags=tags)
        if install:
            self.install(pid)
        return pid

    def install(self, pid: str) -> None:
        src = (PACKAGE / "main.lua").read_text()
        self.ev(pid, 'package.loaded["@sam/Llama-Herder"] = (function()\n' + src + "\nend)()")

    def load_example(self, pid: str, name: str) -> str:
        return self.ev(pid, (EXAMPLES / name).read_text())

    # -- what the stand-ins saw ----------------------------------------------

    def set_prices(self, **prices: str) -> None:
        p = dict(PRICES_DEFAULT)
        p.update({k.replace("_", "-"): v for k, v in prices.items()})
        self.ev(self.herder, "Prices = " + "{" + ", ".join(f'["{k}"] = "{v}"' for k, v in p.items()) + "}")

    def info_count(self, client: str) -> int:
        return int(self.ev(self.herder, f"return InfoCount({lua_str(client)})"))

    def jobs(self, client: str) -> list[dict]:
        return json.loads(self.ev(self.herder, f"return JobsOf({lua_str(client)})"))

    def transfers(self, sender: str) -> list[dict]:
        return json.loads(self.ev(self.token, f"return TransfersFrom({lua_str(sender)})"))

    def respond(self, client: str, ref: str, text: str) -> None:
        self.ev(self.herder, f"Respond({lua_str(client)}, {lua_str(ref)}, {lua_str(text)})")

    def printed(self, pid: str) -> str:
        rows = self.c.results(pid, limit=100, sort="DESC")
        parts = []
        for row in reversed(rows):
            out = row["result"].get("Output") or {}
            parts.append(out.get("data", "") if isinstance(out, dict) else str(out))
        return ANSI.sub("", "\n".join(str(p) for p in parts))

    def wait_printed(self, pid: str, text: str, timeout: float = 10.0) -> str:
        return wait_for(lambda: (lambda p: p if text in p else "")(self.printed(pid)), timeout)

    def lua(self, pid: str, expr: str) -> str:
        return self.ev(pid, "return " + expr)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    c = Client.open(tmp_path_factory.mktemp("llama-client") / "node", services=False)
    try:
        yield Net(c)
    finally:
        c.close()


# -- loading and ids ------------------------------------------------------------------------------


def test_manifest_and_files():
    m = json.loads((PACKAGE / "manifest.json").read_text())
    assert (m["vendor"], m["name"], m["version"], m["main"], m["readme"]) == \
        ("@sam", "Llama-Herder", "1.1.0", "main.lua", "README.md")
    assert m["description"] == "Easy to use fully onchain LLM inference."
    assert m["dependencies"] == {} and m["warnings"]["modifiesGlobalState"] is True
    assert m["license"] == "MIT" and m["keywords"] and m["authors"]
    assert (PACKAGE / "README.md").read_text().startswith("# @sam/Llama-Herder")


def test_ids_follow_spawn_tags_and_module_shape(net):
    pid = net.spawn()
    assert net.lua(pid, "Llama.herder") == net.herder
    assert net.lua(pid, "Llama.token") == net.token
    # the global is the module table; fields and functions exist
    assert net.lua(pid, 'Llama == package.loaded["@sam/Llama-Herder"]') == "true"
    assert net.lua(pid, "Llama.feeBump") == "1.005"
    assert net.lua(pid, "tostring(Llama.printResponses) .. tostring(Llama.feeBase) .. Llama.reference") == "truenil0"
    for fn in ("run", "getPrices", "calculateFee"):
        assert net.lua(pid, f"type(Llama.{fn})") == "function"


def test_ids_tag_names_case_insensitive(net):
    pid = net.spawn(tags=[("llama-herder", net.herder), ("Wrapped-Ar", net.token)])
    assert net.lua(pid, "Llama.herder .. ' ' .. Llama.token") == f"{net.herder} {net.token}"


def test_ids_default_to_network_and_global_not_clobbered(net):
    pid = net.spawn(tags=[], install=False)
    net.ev(pid, "Llama = { mine = true }")
    net.install(pid)
    assert net.lua(pid, "tostring(Llama.mine)") == "true"
    assert net.lua(pid, 'package.loaded["@sam/Llama-Herder"].herder') == NETWORK_HERDER
    assert net.lua(pid, 'package.loaded["@sam/Llama-Herder"].token') == NETWORK_TOKEN


def test_reload_keeps_counter_and_pending(net):
    pid = net.spawn()
    net.ev(pid, 'Llama.run("hello there", 5, function() end, { Fee = 10 })')
    net.ev(pid, "Llama.printResponses = false")
    net.install(pid)
    assert net.lua(pid, 'Llama.reference .. " " .. tostring(Llama.pending["0"] ~= nil)') == "1 true"
    assert net.lua(pid, "tostring(Llama.printResponses)") == "true"
    count = ('(function() local n = 0 for _, h in ipairs(Handlers.list) do '
             'if h.name == "LlamaHerder.Inference-Response" then n = n + 1 end end return n end)()')
    assert net.lua(pid, count) == "1"


# -- behaviour 18: prices first, then one Transfer --------------------------------------------------


def test_run_without_prices_asks_info_then_pays(net):
    net.set_prices()
    pid = net.spawn()
    prompt = "Write a story in 10 words or less."
    assert net.ev(pid, f"return tostring(Llama.run({lua_str(prompt)}, 10))") == "nil"
    wait_for(lambda: net.transfers(pid))
    assert net.info_count(pid) == 1
    (t,) = net.transfers(pid)
    assert t == {"From": pid, "Recipient": net.herder, "Quantity": "19", "X-Prompt": prompt,
                 "X-Tokens": "10", "X-Reference": "0"}
    assert net.lua(pid, "Llama.feeBase .. ' ' .. Llama.feeToken .. ' ' .. Llama.lastMultiplier .. ' ' .. "
                        "Llama.queueLength") == "1 1 1 3"
    assert "LlamaHerder: Handling new price info..." in net.printed(pid)
    # the herder got the payment with the X- tags (through the token's Credit-Notice)
    (job,) = wait_for(lambda: net.jobs(pid))
    assert (job["ref"], job["tokens"], job["quantity"], job["prompt"]) == ("0", "10", "19", prompt)
    # prices known now: the next run pays at once with the next reference
    assert net.ev(pid, f"return Llama.run({lua_str(prompt)}, 10)") == "1"
    wait_for(lambda: len(net.transfers(pid)) == 2)
    assert net.transfers(pid)[1]["X-Reference"] == "1" and net.info_count(pid) == 1


def test_get_prices_callback(net):
    net.set_prices(Base_Fee="7", Token_Fee="2", Last_Multiplier="1.5", Queue_Length="0")
    pid = net.spawn()
    net.ev(pid, "Llama.getPrices(function() GotPrices = Llama.feeBase * 100 + Llama.feeToken end)")
    assert wait_for(lambda: net.lua(pid, "tostring(GotPrices)") != "nil" and net.lua(pid, "GotPrices")) == "702"
    assert net.lua(pid, "Llama.lastMultiplier .. ' ' .. Llama.queueLength") == "1.5 0"
    net.set_prices()


def test_base_fee_zero_counts_as_known(net):
    net.set_prices(Base_Fee="0", Queue_Length="0")
    pid = net.spawn()
    net.ev(pid, 'Llama.run("one two three", 4)')
    (t,) = wait_for(lambda: net.transfers(pid))
    assert t["Quantity"] == "7"            # (0 + 1 * (4 + 3)) * 1
    time.sleep(0.2)
    assert net.info_count(pid) == 1 and len(net.transfers(pid)) == 1
    net.set_prices()


def test_info_response_from_others_ignored(net):
    pid = net.spawn()
    other = net.spawn(install=False)
    net.ev(other, f'Send({{ Target = {lua_str(pid)}, Action = "Info-Response", ["Base-Fee"] = "1", '
                  '["Token-Fee"] = "1", ["Last-Multiplier"] = "1", ["Queue-Length"] = "0" })')
    wait_for(lambda: "Info-Response" in net.printed(pid))   # the default handler shows it
    assert net.lua(pid, "tostring(Llama.feeBase)") == "nil"


# -- behaviour 19: the fee ------------------------------------------------------------------------


def test_fee_values(net):
    pid = net.spawn()
    story = lua_str("Write a story in 10 words or less.")
    net.ev(pid, "Llama.feeBase, Llama.feeToken, Llama.lastMultiplier, Llama.queueLength = 1, 1, 1, 3")
    assert net.lua(pid, f"Llama.calculateFee({story}, 10)") == "19"
    assert net.lua(pid, f"Llama.calculateFee({story}, 10, {{ Multiplier = 2 }})") == "38"
    assert net.lua(pid, f"math.type(Llama.calculateFee({story}, 10))") == "integer"
    net.ev(pid, "Llama.queueLength = 0")
    assert net.lua(pid, f"Llama.calculateFee({story}, 10)") == "19"
    net.ev(pid, "Llama.feeBase, Llama.feeToken, Llama.lastMultiplier, Llama.queueLength = 1000, 100, 1.2, 1")
    assert net.lua(pid, 'Llama.calculateFee("one two three", 7)') == "2411"
    # word counting: runs of ASCII letters and digits
    assert net.lua(pid, "Llama.countWords(\"don't Llama-Herder 10 caf\\195\\169!\")") == "6"
    # static Fee replaces the computed fee; Multiplier applies to it too
    assert net.lua(pid, 'Llama.calculateFee("x", 1, { Fee = 50 })') == "50"
    assert net.lua(pid, 'Llama.calculateFee("x", 1, { Fee = 50, Multiplier = 1.5 })') == "75"


def test_fee_2411_over_the_wire_and_multiplier_38(net):
    net.set_prices(Base_Fee="1000", Token_Fee="100", Last_Multiplier="1.2", Queue_Length="1")
    pid = net.spawn()
    net.ev(pid, 'Llama.run("one two three", 7)')
    (t,) = wait_for(lambda: net.transfers(pid))
    assert t["Quantity"] == "2411"
    net.set_prices()
    pid2 = net.spawn()
    net.ev(pid2, 'Llama.run("Write a story in 10 words or less.", 10, nil, { Multiplier = 2 })')
    (t2,) = wait_for(lambda: net.transfers(pid2))
    assert t2["Quantity"] == "38"


def test_static_fee_before_prices(net):
    pid = net.spawn()
    assert net.lua(pid, 'tostring(Llama.calculateFee("hello", 5))') == "nil"
    assert net.ev(pid, 'return Llama.run("hello", 5, nil, { Fee = 50 })') == "0"
    (t,) = wait_for(lambda: net.transfers(pid))
    assert (t["Quantity"], t["X-Reference"], t["X-Tokens"]) == ("50", "0", "5")
    assert net.ev(pid, 'return Llama.run("hello", 5, nil, { Fee = "40", Multiplier = 2 })') == "1"
    wait_for(lambda: len(net.transfers(pid)) == 2)
    assert net.transfers(pid)[1]["Quantity"] == "80"
    time.sleep(0.1)
    assert net.info_count(pid) == 0


# -- behaviour 24 (client side): answers ----------------------------------------------------------


def test_inference_response_fires_callback_once(net):
    pid = net.spawn()
    net.ev(pid, 'Answers = {} Llama.run("tell me", 3, function(text) table.insert(Answers, text) end, { Fee = 9 })')
    (job,) = wait_for(lambda: net.jobs(pid))
    net.respond(pid, job["ref"], "Once upon a time")
    assert wait_for(lambda: net.lua(pid, "#Answers") == "1" and net.lua(pid, "Answers[1]")) == "Once upon a time"
    assert net.lua(pid, 'tostring(Llama.pending["0"])') == "nil"
    # the same reference again: no second call; printed instead
    net.respond(pid, job["ref"], "again")
    net.wait_printed(pid, "LlamaHerder response: again")
    assert net.lua(pid, "#Answers") == "1"


def test_response_without_callback_printed(net):
    pid = net.spawn()
    net.ev(pid, 'Llama.run("tell me", 3, nil, { Fee = 9 })')
    wait_for(lambda: net.jobs(pid))
    net.respond(pid, "0", "a llama walks into a bar")
    net.wait_printed(pid, "LlamaHerder response: a llama walks into a bar")
    net.ev(pid, "Llama.printResponses = false")
    net.respond(pid, "77", "silent answer")
    time.sleep(0.3)
    assert "silent answer" not in net.printed(pid)


def test_inference_response_from_non_herder_ignored(net):
    pid = net.spawn()
    other = net.spawn(install=False)
    net.ev(pid, 'Hit = 0 Llama.run("tell me", 3, function() Hit = Hit + 1 end, { Fee = 9 })')
    net.ev(other, f'Send({{ Target = {lua_str(pid)}, Action = "Inference-Response", ["X-Reference"] = "0", '
                  'Data = "spoofed" })')
    wait_for(lambda: "spoofed" in net.printed(pid) or "Inference-Response" in net.printed(pid))
    assert net.lua(pid, "Hit") == "0"
    assert net.lua(pid, 'tostring(Llama.pending["0"] ~= nil)') == "true"
    net.respond(pid, "0", "real")
    assert wait_for(lambda: net.lua(pid, "Hit") == "1")


def test_callback_error_is_reported(net):
    pid = net.spawn()
    net.ev(pid, 'Llama.run("tell me", 3, function() error("boom") end, { Fee = 9 })')
    wait_for(lambda: net.jobs(pid))
    net.respond(pid, "0", "x")
    out = net.wait_printed(pid, "callback of request 0 failed")
    assert "boom" in out


# -- refunds and failed payments --------------------------------------------------------------------


def test_refund_is_reported_and_drops_callback(net):
    pid = net.spawn()
    net.ev(pid, 'Hit = 0 Llama.run("tell me", 3, function() Hit = Hit + 1 end, { Fee = 2 })')
    wait_for(lambda: net.jobs(pid))
    assert wait_for(lambda: net.lua(pid, 'tostring(Llama.pending["0"] and Llama.pending["0"].paid)')) == "true"
    net.ev(net.herder, f'Refund({lua_str(pid)}, "0", "2", "Insufficient payment")')
    out = net.wait_printed(pid, "LlamaHerder: request 0 refunded: Insufficient payment")
    assert "2 wAR units returned" in out and "needs 100" in out
    assert net.lua(pid, 'tostring(Llama.pending["0"])') == "nil"
    net.respond(pid, "0", "late answer")
    net.wait_printed(pid, "LlamaHerder response: late answer")
    assert net.lua(pid, "Hit") == "0"


def test_refund_like_notice_not_from_herder_falls_through(net):
    pid = net.spawn()
    net.ev(pid, 'Llama.run("tell me", 3, function() end, { Fee = 2 })')
    wait_for(lambda: net.jobs(pid))
    other = net.spawn(install=False)
    # another process pays the user with X-Reason and the same X-Reference: not a herder refund
    net.ev(other, f'Send({{ Target = {lua_str(net.token)}, Action = "Transfer", Recipient = {lua_str(pid)}, '
                  'Quantity = "1", ["X-Reason"] = "fake", ["X-Reference"] = "0" })')
    net.wait_printed(pid, "Credit-Notice")
    assert "refunded" not in net.printed(pid)
    assert net.lua(pid, 'tostring(Llama.pending["0"] ~= nil)') == "true"


@pytest.mark.parametrize("mode", ["reply", "bare"])
def test_transfer_error_reports_too_little_war(net, mode):
    pid = net.spawn()
    net.ev(net.token, f'Refuse = "{mode}"')
    try:
        net.ev(pid, 'Llama.run("tell me", 3, function() end, { Fee = 123 })')
        out = net.wait_printed(pid, "LlamaHerder: transfer error")
    finally:
        net.ev(net.token, "Refuse = false")
    assert "too little wAR" in out and "123" in out and "request 0" in out and "Insufficient Balance!" in out
    assert net.lua(pid, "next(Llama.pending) == nil") == "true"
    assert net.jobs(pid) == []


# -- argument checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("call, words", [
    ("Llama.run(nil, 10)", "prompt must be a string"),
    ("Llama.run(42, 10)", "prompt must be a string"),
    ('Llama.run("", 10)', "prompt must not be empty"),
    ('Llama.run("hi")', "tokens must be a positive integer"),
    ('Llama.run("hi", 0)', "tokens must be a positive integer"),
    ('Llama.run("hi", -3)', "tokens must be a positive integer"),
    ('Llama.run("hi", 1.5)', "tokens must be a positive integer"),
    ('Llama.run("hi", "10")', 'tokens must be a positive integer, got "10"'),
    ('Llama.run("hi", 0/0)', "tokens must be a positive integer"),
    ('Llama.run("hi", 10, "cb")', "callback must be a function"),
    ('Llama.run("hi", 10, nil, 5)', "options must be a table"),
    ('Llama.run("hi", 10, nil, { Fee = -1 })', "Fee must be a positive number"),
    ('Llama.run("hi", 10, nil, { Fee = "lots" })', "Fee must be a positive number"),
    ('Llama.run("hi", 10, nil, { Fee = 5, Multiplier = 0 })', "Multiplier must be a positive number"),
    ('Llama.run("hi", 10, nil, { Fee = 0.5 })', "a payment must be at least 1"),
    ('Llama.calculateFee("hi", 2.5)', "tokens must be a positive integer"),
    ('Llama.getPrices("cb")', "callback must be a function"),
])
def test_bad_arguments(net, call, words):
    if not hasattr(net, "_argpid"):
        net._argpid = net.spawn()
    err = net.ev_error(net._argpid, call)
    assert words in err
    assert net.lua(net._argpid, "next(Llama.pending) == nil and Llama.reference == 0") == "true"


def test_bad_arguments_send_nothing(net):
    pid = net.spawn()
    net.ev_error(pid, 'Llama.run("hi", 0)')
    net.ev_error(pid, 'Llama.run(nil, 5)')
    time.sleep(0.2)
    assert net.transfers(pid) == [] and net.info_count(pid) == 0


# -- examples -------------------------------------------------------------------------------------


def test_joker_without_package_prints_needs(net):
    pid = net.spawn(install=False)
    res = net.c.eval(ALICE, pid, (EXAMPLES / "llama-joker.lua").read_text())
    assert not res.get("Error")
    out = ANSI.sub("", json.dumps(res["Output"]))
    for need in (".load-blueprint apm", 'APM.install(\\"@sam/Llama-Herder\\")', ".faucet"):
        assert need in out
    names = net.ev(pid, 'local t = {} for _, h in ipairs(Handlers.list) do t[#t + 1] = h.name end '
                        'return table.concat(t, ",")')
    assert "Joke" not in names.split(",")


def test_joker_tells_jokes(net):
    pid = net.spawn()
    assert "Llama Joker ready" in net.load_example(pid, "llama-joker.lua")
    (job,) = wait_for(lambda: net.jobs(pid))
    assert job["prompt"] == ("<|system|>\nTell a joke on the given topic, on one line<|end|>\n"
                             "<|user|>\nTopic: cats<|end|>\n<|assistant|>\n")
    assert job["tokens"] == "40"
    net.respond(pid, job["ref"], "Why do cats love computers? For the mouse!<|end|>\n<|user|>\nmore")
    net.wait_printed(pid, "Ok, I think I've got a good one: Why do cats love computers? For the mouse!")
    # another topic through the X-JokeTopic tag (delivered as X-Joketopic)
    net.c.send(ALICE, pid, tags=[("Action", "Joke"), ("X-JokeTopic", "dogs")])
    jobs = wait_for(lambda: (lambda j: j if len(j) == 2 else None)(net.jobs(pid)))
    assert "Topic: dogs<|end|>" in jobs[1]["prompt"]
    net.respond(pid, jobs[1]["ref"], "  A dog walks in.\nSecond line")
    net.wait_printed(pid, "Ok, I think I've got a good one: A dog walks in.")
    assert "Second line" not in net.printed(pid)


def test_examples_load_with_package(net):
    for name in ("llama-king.lua", "chatbot.lua", "llama-coin.lua", "llama-joker.lua"):
        pid = net.spawn()
        out = net.load_example(pid, name)
        assert "ready" in out, (name, out)


def test_examples_need_package(net):
    for name in ("llama-king.lua", "chatbot.lua"):
        pid = net.spawn(install=False)
        out = net.load_example(pid, name)
        assert "not ready" in out and "@sam/Llama-Herder" in out


def _coin(net, granters=()) -> str:
    coin = net.spawn(install=False)
    assert "LLAMA ready (Denomination 12)" in net.load_example(coin, "llama-coin.lua")
    for g in granters:
        net.ev(coin, f"GrantWhitelist[{lua_str(g)}] = true")
    return coin


def test_llama_coin_grant_whitelist(net):
    granter = net.spawn(install=False)
    stranger = net.spawn(install=False)
    friend = net.spawn(install=False)
    coin = _coin(net, [granter])
    net.ev(friend, 'Handlers.add("gn", "Grant-Notice", function(m) GotGrant = m.Quantity .. "/" .. m.Sender '
                   '.. "/" .. tostring(m["X-Why"]) end)')
    net.ev(granter, f'Send({{ Target = {lua_str(coin)}, Action = "Grant", Recipient = {lua_str(friend)}, '
                    'Quantity = "5000000000000", ["X-Why"] = "test" })')
    assert wait_for(lambda: net.lua(friend, "tostring(GotGrant)") != "nil" and net.lua(friend, "GotGrant")) \
        == f"5000000000000/{granter}/test"
    assert net.lua(coin, f"Balances[{lua_str(friend)}] .. ' ' .. TotalSupply") == "5000000000000 5000000000000"
    net.ev(stranger, 'Handlers.add("ge", "Grant-Error", function(m) GrantError = m.Error end)')
    net.ev(stranger, f'Send({{ Target = {lua_str(coin)}, Action = "Grant", Recipient = {lua_str(stranger)}, '
                     'Quantity = "1" })')
    assert "whitelisted" in wait_for(lambda: net.lua(stranger, "tostring(GrantError)") != "nil"
                                     and net.lua(stranger, "GrantError"))
    assert net.lua(coin, f"tostring(Balances[{lua_str(stranger)}])") == "nil"
    # Info, Transfer and Transfer-Error
    net.ev(friend, f'Send({{ Target = {lua_str(coin)}, Action = "Transfer", Recipient = {lua_str(stranger)}, '
                   'Quantity = "2000000000000" })')
    wait_for(lambda: net.lua(coin, f"tostring(Balances[{lua_str(stranger)}])") == "2000000000000")
    assert net.lua(coin, f"Balances[{lua_str(friend)}]") == "3000000000000"
    assert net.ev(coin, 'Send({ Target = ao.id, Action = "Info" }) return Denomination') == "12"


def _petition(net, king, text, name="Alice", quantity="25000000000") -> None:
    net.c.send(ALICE, net.token, tags=[("Action", "Transfer"), ("Recipient", king), ("Quantity", quantity),
                                       ("X-Petition", text), ("X-Sender-Name", name)])


def test_llama_king_grades_and_grants(net):
    king = net.spawn()
    coin = _coin(net, [king])
    net.ev(king, f"LlamaCoin = {lua_str(coin)}")
    assert "Llama King ready" in net.load_example(king, "llama-king.lua")
    _petition(net, king, "Oh great King, my llama is hungry.")
    (job,) = wait_for(lambda: net.jobs(king))
    assert "Alice pleads: Oh great King, my llama is hungry.<|end|>" in job["prompt"]
    assert job["prompt"].startswith("<|system|>\nYou are the Llama King")
    net.respond(king, job["ref"], '{"response": "A fine plea.", "grade": 4}<|end|>')
    alice = ALICE.address
    assert wait_for(lambda: net.lua(coin, f"tostring(Balances[{lua_str(alice)}])") != "nil"
                    and net.lua(coin, f"Balances[{lua_str(alice)}]")) == str(20 * LLAMA)
    out = net.printed(king)
    assert "Alice, please allow me a few minutes" in out and "A fine plea." in out and "4/5" in out


@pytest.mark.parametrize("text, grade, comment", [
    ('{"response": "Bah.", "grade": 0}', 0, "Bah."),
    ('{"response": "Wow!", "grade": 9}', 5, "Wow!"),
    ('{"response": "Cut off', None, None),
    ("I give it a 3 out of 5", 3, "I give it a 3 out of 5"),
    ("no digits at all", 1, "Your plea confused me immensely..."),
    ('{"grade": "2", "response": "Meh."}', 2, "Meh."),
])
def test_llama_king_parses_verdicts(net, text, grade, comment):
    if not hasattr(net, "_kingpid"):
        net._kingpid = net.spawn()
        net.load_example(net._kingpid, "llama-king.lua")
    got = net.ev(net._kingpid, f"local g, c = ParseVerdict({lua_str(text)}) return g .. '|' .. c")
    if grade is None:   # truncated JSON with no digit: the fallback
        assert got == "1|Your plea confused me immensely..."
    else:
        assert got == f"{grade}|{comment}"


def test_llama_king_refunds_bad_and_expired_pleas(net):
    king = net.spawn()
    net.load_example(king, "llama-king.lua")
    alice = ALICE.address
    _petition(net, king, "too cheap", quantity="5")
    wait_for(lambda: net.transfers(king))
    (t,) = net.transfers(king)
    assert (t["Recipient"], t["Quantity"]) == (alice, "5") and "costs" in t["X-Reason"]
    # an expired plea frees its slot and is refunded; a late verdict is ignored
    net.ev(king, "KingSlots = 1")
    _petition(net, king, "first plea")
    _petition(net, king, "second plea")
    wait_for(lambda: len(net.jobs(king)) >= 1)
    assert net.lua(king, "#KingQueue") == "1"
    # pretend the first plea started long ago; the next message (any message moves the clock) expires it
    net.ev(king, "for _, job in pairs(KingJobs) do job.started = job.started - KingTimeoutMs end")
    net.ev(king, "return 1")
    refunds = wait_for(lambda: [x for x in net.transfers(king) if x.get("X-Reason") == "The King took too long"])
    assert refunds[0]["Recipient"] == alice and refunds[0]["Quantity"] == "25000000000"
    # the freed slot went to the waiting plea
    wait_for(lambda: len(net.jobs(king)) >= 2)
    assert "second plea" in net.jobs(king)[1]["prompt"]
    net.respond(king, net.jobs(king)[0]["ref"], '{"response": "Late.", "grade": 5}')
    net.wait_printed(king, "late verdict")
    net.respond(king, net.jobs(king)[1]["ref"], '{"response": "No.", "grade": 0}')
    net.wait_printed(king, "no $LLAMA for you")
    assert net.lua(king, "next(KingJobs) == nil and #KingQueue == 0") == "true"


def test_chatbot_keeps_conversation_per_sender(net):
    bot = net.spawn()
    net.load_example(bot, "chatbot.lua")
    friend = net.spawn(install=False)
    net.ev(friend, 'Replies = {} Handlers.add("cr", "Chat-Response", function(m) table.insert(Replies, m.Data) end)')
    net.ev(friend, f'Send({{ Target = {lua_str(bot)}, Action = "Chat", Data = "Hello llama" }})')
    (job,) = wait_for(lambda: net.jobs(bot))
    assert job["prompt"].startswith("<|system|>\n")
    assert job["prompt"].endswith("<|user|>\nHello llama<|end|>\n<|assistant|>\n")
    net.respond(bot, job["ref"], "Hi there!<|end|>\n<|user|>\nignored")
    assert wait_for(lambda: net.lua(friend, "#Replies") == "1" and net.lua(friend, "Replies[1]")) == "Hi there!"
    net.ev(friend, f'Send({{ Target = {lua_str(bot)}, Action = "Chat", Data = "What do you eat?" }})')
    jobs = wait_for(lambda: (lambda j: j if len(j) == 2 else None)(net.jobs(bot)))
    assert jobs[1]["prompt"].endswith("<|user|>\nHello llama<|end|>\n<|assistant|>\nHi there!<|end|>\n"
                                      "<|user|>\nWhat do you eat?<|end|>\n<|assistant|>\n")
    # a second message while waiting gets a busy answer, not a new request
    net.ev(friend, f'Send({{ Target = {lua_str(bot)}, Action = "Chat", Data = "hurry" }})')
    assert "still thinking" in wait_for(lambda: net.lua(friend, "#Replies") == "2" and net.lua(friend, "Replies[2]"))
    assert len(net.jobs(bot)) == 2
    # the history is bounded
    net.ev(bot, "ChatMaxPromptChars = 60")
    long_history = net.lua(bot, f'ChatPrompt(Conversations[{lua_str(friend)}])')
    assert "Hello llama" not in long_history and "What do you eat?" in long_history
