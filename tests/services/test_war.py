"""wAR (lua/services/war.lua) on a real local node: the ao token standard as the herder and Llama Land use it.

Covers apm-token-herder.md §7 behaviours 12-16, plus Mint (owner only, Credit-Notice to the recipient), Cast,
Burn, Total-Supply, Balances, X-tag forwarding into real processes, exact integer math at 10^24 and a reload
that keeps balances. Senders are mostly fresh Ed25519 wallets, so every test starts from known balances on
one shared node.
"""

from __future__ import annotations

import json
import re

import pytest
from service_support import ALICE, BOB, wait_for

from aos_py.client import Client
from aos_py.node.wallet import Wallet
from aos_py.resources import service_source

ANSI = re.compile(r"\x1b\[[0-9;]*m")
E24 = 10**24


def plain(s: str | None) -> str:
    return ANSI.sub("", s or "")


def tags(m: dict) -> dict:
    return {t["name"]: t["value"] for t in m["Tags"]}


def user_tags(m: dict) -> dict:
    """The tags a handler set (without the four ao.send adds itself)."""
    return {k: v for k, v in tags(m).items() if k not in ("Data-Protocol", "Variant", "Type", "Reference")}




def load(c: Client, pid: str, config: str = 'Ticker="wAR"') -> dict:
    res = c.eval(ALICE, pid, "ServiceConfig = {" + config + "}\n" + service_source("war"))
    assert "Error" not in res, res.get("Error")
    return res


class Env:
    def __init__(self, c: Client) -> None:
        self.c = c
        self.war = c.spawn(ALICE, name="wAR")
        load(c, self.war, 'Ticker="wAR", Logo="L0g0"')

    # -- requests ----------------------------------------------------------------------------------

    def call(self, w: Wallet, action: str, **kw: str) -> tuple[str, dict]:
        """Send Action=<action> with tags kw (underscores become dashes) from wallet w; (id, result)."""
        t = [("Action", action)] + [(k.replace("_", "-"), v) for k, v in kw.items()]
        mid = self.c.send(w, self.war, tags=t)
        res = self.c.wait_result(self.war, mid)
        for m in res.get("Messages", []):
            assert all(isinstance(x["value"], str) for x in m["Tags"]), m["Tags"]
        return mid, res

    def ask(self, action: str, frm: str | None = None, **kw: str) -> dict:
        """Dry-run query; the single reply message."""
        t = [("Action", action)] + [(k.replace("_", "-"), v) for k, v in kw.items()]
        res = self.c.dryrun(self.war, tags=t, owner=frm or BOB.address)
        assert "Error" not in res, res.get("Error")
        assert len(res["Messages"]) == 1, res["Messages"]
        m = res["Messages"][0]
        assert all(isinstance(x["value"], str) for x in m["Tags"]), m["Tags"]
        return m

    def balance(self, account: str) -> str:
        return self.ask("Balance", Recipient=account)["Data"]

    def balances(self) -> dict:
        return json.loads(self.ask("Balances")["Data"])

    def supply(self) -> str:
        return self.ask("Total-Supply")["Data"]

    def mint(self, recipient: str, quantity: int | str) -> dict:
        _, res = self.call(ALICE, "Mint", Quantity=str(quantity), Recipient=recipient)
        assert "Error" not in res, res.get("Error")
        return res

    def funded(self, quantity: int | str) -> Wallet:
        w = Wallet.generate("ed25519")
        self.mint(w.address, quantity)
        return w

    # -- processes ---------------------------------------------------------------------------------

    def peek(self, pid: str, code: str) -> str:
        res = self.c.dryrun(pid, tags=[("Action", "Eval")], data=code, owner=ALICE.address)
        assert "Error" not in res, res.get("Error")
        out = res["Output"]
        return out["data"] if isinstance(out, dict) else out

    def inbox_from_war(self, pid: str, action: str, n: int = 1) -> list[dict]:
        """Wait until pid's Inbox holds n messages from wAR with that Action; their tags (+ Data, From)."""
        code = """
local out = {}
for _, m in ipairs(Inbox) do
  if m.From == 'WAR' and m.Action == 'ACTION' then
    local t = {}
    for _, tag in ipairs(m.TagArray) do t[tag.name] = tag.value end
    t['@Data'] = m.Data
    t['@From'] = m.From
    out[#out + 1] = t
  end
end
return require('json').encode(out)
""".replace("ACTION", action).replace("WAR", self.war)

        def got():
            found = json.loads(self.peek(pid, code) or "[]")
            return found if len(found) >= n else None

        return wait_for(got)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    c = Client.open(tmp_path_factory.mktemp("war") / "node", services=False)
    try:
        yield Env(c)
    finally:
        c.close()


# -- 12: Info and Balance --------------------------------------------------------------------------------

def test_info_reports_the_configured_token_with_string_tags(env):
    t = user_tags(env.ask("Info"))
    assert t["Name"] == "Wrapped AR"          # the default
    assert t["Ticker"] == "wAR"
    assert t["Denomination"] == "12"
    assert t["Logo"] == "L0g0"
    assert t["Total-Supply"] == env.supply()


def test_balance_reply_tags_and_unknown_account(env):
    w = env.funded(1234)
    m = env.ask("Balance", Recipient=w.address)
    assert user_tags(m) == {"Balance": "1234", "Ticker": "wAR", "Account": w.address}
    assert m["Data"] == "1234"
    assert m["Target"] == BOB.address        # replies go to the caller
    unknown = "u" * 43
    m = env.ask("Balance", Recipient=unknown)
    assert m["Data"] == "0" and tags(m)["Balance"] == "0" and tags(m)["Account"] == unknown
    assert unknown not in env.balances()      # a query writes nothing


def test_balance_account_is_the_account_queried(env):
    w = env.funded(77)
    # a Target tag (no Recipient) queries that account, and Account says so (our fix)
    m = env.ask("Balance", Target=w.address)
    assert m["Data"] == "77" and tags(m)["Account"] == w.address
    # no tag: the sender's own balance
    m = env.ask("Balance", frm=w.address)
    assert m["Data"] == "77" and tags(m)["Account"] == w.address and m["Target"] == w.address


# -- 13 and 14: Transfer -----------------------------------------------------------------------------------

def test_transfer_moves_exact_amounts_at_10_pow_24(env):
    start = E24 + 123456789
    w = env.funded(start)
    r = Wallet.generate("ed25519").address
    q = E24 - 1
    mid, res = env.call(w, "Transfer", Recipient=r, Quantity=str(q))
    assert "Error" not in res, res.get("Error")
    assert env.balance(w.address) == str(start - q) == "123456790"
    assert env.balance(r) == str(q) == "9" * 24
    debit, credit = res["Messages"]
    assert debit["Target"] == w.address and credit["Target"] == r
    assert tags(debit)["Quantity"] == tags(credit)["Quantity"] == str(q)
    # 10^18 + 1 must not drift through a float either
    q2 = 10**18 + 1
    env.call(w, "Transfer", Recipient=r, Quantity="123456789")
    w2 = env.funded(q2)
    env.call(w2, "Transfer", Recipient=r, Quantity=str(q2))
    assert env.balance(r) == str(q + 123456789 + q2)
    assert env.balance(w2.address) == "0" and env.balance(w.address) == "1"


def test_debit_and_credit_notice_tags_and_texts(env):
    w = env.funded(500)
    r = Wallet.generate("ed25519").address
    _, res = env.call(w, "Transfer", Recipient=r, Quantity="0042",
                      X_Note="hi", X_Reference="7", Y_Other="no", Color="blue")
    debit, credit = res["Messages"]
    assert user_tags(debit) == {"Action": "Debit-Notice", "Recipient": r, "Quantity": "42",
                                "X-Note": "hi", "X-Reference": "7"}
    assert user_tags(credit) == {"Action": "Credit-Notice", "Sender": w.address, "Quantity": "42",
                                 "X-Note": "hi", "X-Reference": "7"}
    assert debit["Target"] == w.address and credit["Target"] == r
    assert plain(debit["Data"]) == f"You transferred 42 to {r}"
    assert plain(credit["Data"]) == f"You received 42 from {w.address}"
    assert env.balance(w.address) == "458" and env.balance(r) == "42"


def test_notices_reach_real_processes_with_x_tags_forwarded(env):
    c, war = env.c, env.war
    payer = c.spawn(ALICE, name="payer")
    payee = c.spawn(ALICE, name="payee")
    env.mint(payer, 1000)
    env.inbox_from_war(payer, "Credit-Notice")        # the faucet money arrives as a Credit-Notice
    res = c.eval(ALICE, payer, f'Send({{Target="{war}", Action="Transfer", Recipient="{payee}", Quantity="5", '
                               '["X-Note"]="hi", ["X-Prompt"]="Tell me", ["Y-Other"]="dropped", Color="red"})')
    assert "Error" not in res, res.get("Error")
    debit = env.inbox_from_war(payer, "Debit-Notice")[0]
    credit = env.inbox_from_war(payee, "Credit-Notice")[0]
    assert debit["@From"] == credit["@From"] == war     # the token proves itself by From
    assert debit["Recipient"] == payee and debit["Quantity"] == "5"
    assert credit["Sender"] == payer and credit["Quantity"] == "5"
    for notice in (debit, credit):
        assert notice["X-Note"] == "hi" and notice["X-Prompt"] == "Tell me"
        assert "Y-Other" not in notice and "Color" not in notice
    assert plain(credit["@Data"]) == f"You received 5 from {payer}"
    assert env.balance(payer) == "995" and env.balance(payee) == "5"


def test_a_process_balance_query_resolves_its_on_reply(env):
    c = env.c
    p = c.spawn(ALICE, name="asker")
    env.mint(p, 321)
    env.inbox_from_war(p, "Credit-Notice")
    code = (f'Send({{Target="{env.war}", Action="Balance"}}).onReply(function(m) '
            'Got = m.Data .. "|" .. m.Account .. "|" .. m.Ticker end)')
    assert "Error" not in c.eval(ALICE, p, code)
    assert wait_for(lambda: env.peek(p, "return Got") == f"321|{p}|wAR")


# -- 15: insufficient balance ------------------------------------------------------------------------------

def test_transfer_over_balance_is_a_transfer_error_and_changes_nothing(env):
    w = env.funded(10)
    r = Wallet.generate("ed25519").address
    before = env.balances()
    mid, res = env.call(w, "Transfer", Recipient=r, Quantity="11")
    assert "Error" not in res, res.get("Error")
    [m] = res["Messages"]
    assert m["Target"] == w.address
    assert user_tags(m) == {"Action": "Transfer-Error", "Message-Id": mid, "Error": "Insufficient Balance!"}
    assert env.balances() == before
    assert r not in before and env.balance(w.address) == "10"
    # an account with no balance at all: still no zero entries are written
    nobody = Wallet.generate("ed25519")
    _, res = env.call(nobody, "Transfer", Recipient=r, Quantity="1")
    assert tags(res["Messages"][0])["Action"] == "Transfer-Error"
    assert env.balances() == before


# -- 16: bad requests and Cast -----------------------------------------------------------------------------

@pytest.mark.parametrize("quantity, error", [
    ("0", "greater than 0"),
    ("000", "greater than 0"),
    ("-5", "greater than 0"),
    ("1.5", "decimal integer"),
    ("0x10", "decimal integer"),
    ("0b11", "decimal integer"),
    ("1e3", "decimal integer"),
    ("+5", "decimal integer"),
    (" 5", "decimal integer"),
    ("abc", "decimal integer"),
    ("1" * 71, "too large"),
    (None, "Quantity is required"),
])
def test_bad_quantity_is_a_handler_error_with_no_notices(env, quantity, error):
    w = env.funded(100)
    r = Wallet.generate("ed25519").address
    kw = {"Recipient": r} if quantity is None else {"Recipient": r, "Quantity": quantity}
    _, res = env.call(w, "Transfer", **kw)
    assert error in res.get("Error", ""), res
    assert res["Messages"] == []
    assert env.balance(w.address) == "100" and env.balance(r) == "0"


def test_missing_recipient_is_a_handler_error(env):
    w = env.funded(100)
    _, res = env.call(w, "Transfer", Quantity="5")
    assert "Recipient is required!" in res["Error"]
    assert res["Messages"] == []
    assert env.balance(w.address) == "100"


def test_cast_moves_funds_without_notices(env):
    w = env.funded(100)
    r = Wallet.generate("ed25519").address
    _, res = env.call(w, "Transfer", Recipient=r, Quantity="30", Cast="true", X_Note="quiet")
    assert "Error" not in res, res.get("Error")
    assert res["Messages"] == []
    assert env.balance(w.address) == "70" and env.balance(r) == "30"


def test_self_transfer_keeps_the_balance(env):
    w = env.funded(100)
    _, res = env.call(w, "Transfer", Recipient=w.address, Quantity="60")
    assert [tags(m)["Action"] for m in res["Messages"]] == ["Debit-Notice", "Credit-Notice"]
    assert env.balance(w.address) == "100"


# -- Mint, Total-Supply, Burn, Balances ---------------------------------------------------------------------

def test_owner_mint_credits_grows_supply_and_notifies_the_recipient(env):
    supply = int(env.supply())
    r = Wallet.generate("ed25519").address
    q = 5 * E24 + 3
    res = env.mint(r, q)
    confirm, credit = res["Messages"]
    assert confirm["Target"] == ALICE.address
    assert plain(confirm["Data"]) == f"Successfully minted {q} to {r}"
    assert credit["Target"] == r
    assert user_tags(credit) == {"Action": "Credit-Notice", "Sender": env.war, "Quantity": str(q)}
    assert env.balance(r) == str(q)
    assert env.supply() == str(supply + q)
    # no Recipient: the minter gets it; Cast: no Credit-Notice
    before = int(env.balance(ALICE.address))
    _, res = env.call(ALICE, "Mint", Quantity="9", Cast="1")
    assert [tags(m).get("Action") for m in res["Messages"]] == [None]
    assert env.balance(ALICE.address) == str(before + 9)
    assert env.supply() == str(supply + q + 9)


def test_mint_by_anyone_else_is_refused(env):
    supply = env.supply()
    mid, res = env.call(BOB, "Mint", Quantity="1000", Recipient=BOB.address)
    [m] = res["Messages"]
    assert m["Target"] == BOB.address
    assert user_tags(m) == {"Action": "Mint-Error", "Message-Id": mid,
                            "Error": "Only the Process Id can mint new wAR tokens!"}
    assert env.balance(BOB.address) == "0" and env.supply() == supply
    # a process (even one owned by the token's owner) is not the owner either
    p = env.c.spawn(ALICE, name="minter")
    env.c.eval(ALICE, p, f'Send({{Target="{env.war}", Action="Mint", Quantity="5"}})')
    err = env.inbox_from_war(p, "Mint-Error")[0]
    assert err["Error"] == "Only the Process Id can mint new wAR tokens!"
    assert env.balance(p) == "0" and env.supply() == supply


def test_mint_with_a_bad_quantity_is_a_handler_error(env):
    supply = env.supply()
    for q in ("0", "-1", "2.5", "0x10"):
        _, res = env.call(ALICE, "Mint", Quantity=q, Recipient="m" * 43)
        assert "Error" in res and res["Messages"] == []
    assert env.supply() == supply and env.balance("m" * 43) == "0"


def test_total_supply_reply_and_equals_the_sum_of_balances(env):
    env.funded(E24)
    m = env.ask("Total-Supply")
    assert tags(m)["Action"] == "Total-Supply" and tags(m)["Ticker"] == "wAR"
    assert m["Data"] == str(sum(int(v) for v in env.balances().values()))


def test_burn_destroys_tokens_and_refuses_more_than_the_balance(env):
    w = env.funded(E24)
    supply = int(env.supply())
    _, res = env.call(w, "Burn", Quantity=str(E24 - 1))
    [m] = res["Messages"]
    assert m["Target"] == w.address and plain(m["Data"]) == f"Successfully burned {E24 - 1}"
    assert env.balance(w.address) == "1" and env.supply() == str(supply - E24 + 1)
    _, res = env.call(w, "Burn", Quantity="2")
    assert "current balance" in res["Error"] and res["Messages"] == []
    assert env.balance(w.address) == "1"


def test_balances_is_a_json_object_of_decimal_strings(env):
    w = env.funded(E24 * 3)
    b = env.balances()
    assert isinstance(b, dict) and b[w.address] == str(E24 * 3)
    assert all(isinstance(v, str) and v.isdigit() for v in b.values())


def test_balances_of_a_fresh_token_is_an_empty_object(env):
    fresh = env.c.spawn(ALICE, name="empty-token")
    load(env.c, fresh)
    res = env.c.dryrun(fresh, tags=[("Action", "Balances")], owner=BOB.address)
    assert res["Messages"][0]["Data"] == "{}"


# -- reload -------------------------------------------------------------------------------------------------

def test_reload_keeps_balances_and_replaces_handlers(env):
    c = env.c
    tok = c.spawn(ALICE, name="wAR-reload")
    res = load(c, tok)
    assert "Wrapped AR (wAR) loaded" in res["Output"]["data"]
    r = Wallet.generate("ed25519")
    c.wait_result(tok, c.send(ALICE, tok, tags=[("Action", "Mint"), ("Quantity", str(E24)),
                                                ("Recipient", r.address)]))
    res = load(c, tok, 'Name="Wrapped AR 2", Ticker="wAR2", Denomination=12, Logo="new"')
    assert "total supply " + str(E24) in res["Output"]["data"]
    info = user_tags(c.dryrun(tok, tags=[("Action", "Info")], owner=BOB.address)["Messages"][0])
    assert (info["Name"], info["Ticker"], info["Denomination"], info["Logo"]) == ("Wrapped AR 2", "wAR2", "12", "new")
    bal = c.dryrun(tok, tags=[("Action", "Balance"), ("Recipient", r.address)], owner=BOB.address)["Messages"][0]
    assert bal["Data"] == str(E24) and tags(bal)["Ticker"] == "wAR2"
    names = env.peek(tok, "local n = {} for _, h in ipairs(Handlers.list) do n[#n+1] = h.name end "
                          "return table.concat(n, ',')")
    for name in ("info", "balance", "balances", "transfer", "mint", "totalSupply", "burn"):
        assert names.split(",").count(name) == 1, names
    # one transfer still gives exactly one pair of notices
    res = c.wait_result(tok, c.send(r, tok, tags=[("Action", "Transfer"), ("Recipient", BOB.address),
                                                  ("Quantity", "1")]))
    assert [tags(m)["Action"] for m in res["Messages"]] == ["Debit-Notice", "Credit-Notice"]
