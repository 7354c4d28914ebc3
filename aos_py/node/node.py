"""The embedded AO node: mu, su and cu wired around one store, driven by one worker thread.

The worker runs scheduling rounds. A round takes the items posted since the
last one, gives them slots, computes queued messages in slot order (pushing
their outboxes, which schedules more messages), and then commits everything
in one SQLite transaction (one fsync). Only after that commit are the posters
answered and subscribers told: nothing is acknowledged before it is durable,
and a crash at any point recovers by replaying the committed log.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from aos_py.node import modules, mu
from aos_py.node.ans104 import DataItem, b64url, parse
from aos_py.node.cron import CronTable, parse_interval
from aos_py.node.cu import ComputeUnit, data_value, item_message
from aos_py.node.dryrun import DryRunner
from aos_py.node.errors import NodeError, NotFound, Rejected
from aos_py.node.events import Subscribers
from aos_py.node.gateway import Gateway
from aos_py.node.parallel import Offload
from aos_py.node.reads import NodeReads
from aos_py.node.rounds import Entry, Post, Round, action_of, commit_round, dump_json, root_of
from aos_py.node.store import FAILED, OK, Store, StoreError
from aos_py.node.su import Scheduler, Slot
from aos_py.node.wallet import load_node_key
from aos_py.runtime import ProcessRuntime

log = logging.getLogger("aos_py.node")

ROUND_MAX_MESSAGES = 4000
WARM_RECENT = 16              # processes rebuilt in the background when the node starts (the most recent)
# message fields an assignment's Exclude cannot remove (the slot and who sent it)
_KEPT_ON_EXCLUDE = {"Id", "Owner", "From", "Target", "Tags", "Epoch", "Nonce", "Timestamp", "Block-Height",
                    "Hash-Chain", "Cron", "Read-Only", "Module", "Exclude"}
RESULTS_KEPT = 20000          # recent results answered from memory (older ones from the store)
ROUND_MAX_SECONDS = 0.05      # a round ends this soon when new items are waiting to be acknowledged
ROUND_MAX_LATENCY = 0.25      # and in any case this soon, so subscribers see results promptly


def default_data_dir() -> Path:
    return Path(os.environ.get("AOS_PY_HOME") or "~/.aos-py").expanduser()


class Node(NodeReads):
    """One local AO node over a data directory."""

    def __init__(self, data_dir: str | Path | None = None, *, synchronous: str = "FULL", check: bool = True,
                 runtime_factory: Callable[..., ProcessRuntime] | None = None, start: bool = True,
                 services: bool = False) -> None:
        self.data_dir = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        self.services_wanted = services
        self.services = None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.data_dir / "node.db", check=check, synchronous=synchronous)
        self.key = load_node_key(self.data_dir / "node-key.json")
        self.address = self.key.address
        self.gateway = Gateway(self.store, self.data_dir / "blobs", fallback=self._logged_item)
        self.gateway.add_item(modules.default_module_item(), "module")
        self._factory = runtime_factory or ProcessRuntime
        self._procs: dict[str, dict] = {}
        self.cu = ComputeUnit(self._make_runtime, self.store.replay_rows, self.env)
        self.dryrunner = DryRunner(self._make_runtime, self.store.replay_rows_after, self.env)
        self._cv = threading.Condition()
        self._posts: list[Post] = []
        self._results: dict[str, dict] = {}
        self._result_order: deque[str] = deque()
        self.subscribers = Subscribers()
        self._closing = False
        self.stats = {"rounds": 0, "computed": 0, "dropped": 0}
        self._load()
        self.cron = CronTable(self)
        self.offload = Offload(self._wake)
        self._warm: list[str] = []
        self._thread = threading.Thread(target=self._run, name="aos-node", daemon=True)
        if start:
            self.start()

    # -- lifecycle -------------------------------------------------------------

    def _load(self) -> None:
        self.su = Scheduler(self.store.tails())
        self._queue: deque[Entry] = deque()
        for _seq, pid, nonce, msg_json, data in self.store.pending():
            msg = json.loads(msg_json)
            self._queue.append(Entry(pid, nonce, msg["Id"], msg, msg_json, data or b"", root_of(msg), False))

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()
            self.subscribers.start()
            self.cron.start()
        if self.services_wanted and self.services is None:
            from aos_py.node.services import Services

            services = Services(self)
            self.services = services     # set first: the env tags of what ensure() spawns name the others
            try:
                services.ensure()
            except Exception as exc:  # noqa: BLE001 - the node still works; the shell says what is missing
                log.warning("node services incomplete: %s", exc)
        # after a restart: rebuild the processes used most recently in the background, before anyone asks
        self.warm([pid for pid in self.store.recent_processes(WARM_RECENT) if not self.cu.is_live(pid)])

    def close(self) -> None:
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        self.cron.stop()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.subscribers.close()
        self.offload.close()
        self.dryrunner.close()
        self.cu.close()
        self.store.close()

    def llama_engine(self) -> str:
        """The engine behind `require("llama")` in this node's processes (wasm, or native = llama.cpp)."""
        return os.environ.get("AOS_PY_LLAMA_ENGINE", "").strip() or "wasm"

    def _make_runtime(self) -> ProcessRuntime:
        return self._factory(data_resolver=self.gateway.resolve)

    # -- process info ----------------------------------------------------------

    def proc(self, pid: str) -> dict | None:
        p = self._procs.get(pid)
        if p is None:
            p = self.store.process_row(pid)
            if p is not None:
                self._procs[pid] = p
        return p

    def _authorities(self, p: dict) -> frozenset[str]:
        """The signers whose From-Process a process believes: its Authority tags (the node among them)."""
        auth = p.get("authorities")
        if auth is None:
            names = {self.address}
            for t in p["env"]["Process"]["Tags"]:
                if t.get("name") == "Authority" and isinstance(t.get("value"), str):
                    names.update(a.strip() for a in t["value"].split(",") if a.strip())
            auth = p["authorities"] = frozenset(names)
        return auth

    def _add_service_tags(self, env: dict) -> None:
        """Name the node's services (APM-Registry, Wrapped-AR, Llama-Herder) in a process's env, as
        Authority is: processes find the local registry, token and herder without configuration."""
        if self.services is None:
            return
        tags = env["Process"]["Tags"]
        have = {t["name"] for t in tags}
        tags.extend(t for t in self.services.env_tags() if t["name"] not in have)

    def env(self, pid: str) -> dict:
        p = self.proc(pid)
        if p is None:
            raise NotFound(f"no process {pid} on this node")
        if self.services is not None and p.get("services") != len(self.services.record):
            p["services"] = len(self.services.record)
            self._add_service_tags(p["env"])
        return p["env"]

    def _register_process(self, rnd: Round, item: DataItem) -> dict:
        pid = item.id
        module_id = item.tag("Module")
        module = modules.check_module(self.gateway.tags(module_id) or None, module_id)
        tags = [{"name": n, "value": v} for n, v in item.tags]
        if not any(t["name"] == "Authority" and self.address in t["value"].split(",") for t in tags):
            tags.append({"name": "Authority", "value": self.address})
        env = {"Process": {"Id": pid, "Owner": item.owner_address, "Tags": tags}, "Module": module}
        stored_env = json.dumps(env)
        cron = item.tag("Cron-Interval")
        if cron is not None:
            parse_interval(cron)
        p = {"id": pid, "owner": item.owner_address, "name": item.tag("Name"), "module": module_id,
             "created": int(time.time() * 1000), "env": env, "cron": cron, "monitored": False}
        self._procs[pid] = p
        rnd.procs.append((pid, p["owner"], p["name"], module_id, p["created"], stored_env, cron))
        rnd.tags += [(pid, i, n, v) for i, (n, v) in enumerate(item.tags)]
        return p

    # -- posting ---------------------------------------------------------------

    def submit(self, raw: bytes, timeout: float = 60.0) -> str:
        """Post a signed item (Process or Message); returns its id once it is durably scheduled."""
        try:
            item = mu.accept(raw)
        except mu.RejectedItem as exc:
            raise Rejected(str(exc)) from None
        if item.tag("Type") == "Process":
            try:
                modules.check_module(self.gateway.tags(item.tag("Module")) or None, item.tag("Module"))
                if item.tag("Cron-Interval") is not None:
                    parse_interval(item.tag("Cron-Interval"))
            except (LookupError, ValueError) as exc:
                raise Rejected(f"spawn refused: {exc}") from None
        else:
            target = item.target_id
            if self.proc(target) is None and not self._staged_process(target):
                raise NotFound(f"no process {target} on this node")
        return self._post(Post(item, "user"), timeout)

    def _staged_process(self, pid: str) -> bool:
        return pid in self._procs

    def _post(self, post: Post, timeout: float) -> str:
        with self._cv:
            if self._closing:
                raise NodeError("the node is shutting down")
            self._posts.append(post)
            self._cv.notify_all()
        if not post.done.wait(timeout):
            raise NodeError(f"the node did not schedule item {post.item.id} within {timeout} s")
        if post.error is not None:
            raise post.error
        return post.item.id

    def assign(self, process: str, message_id: str, exclude: list[str] | tuple = (), timeout: float = 60.0) -> str:
        """Schedule a message this node already holds onto `process` too (an SU assignment); returns its id.

        The process sees the original message (its Target is still the original one, so aos handles it
        only if it was made assignable); `exclude` names message fields left out (e.g. Data)."""
        if self.proc(process) is None:
            raise NotFound(f"no process {process} on this node")
        raw = self.gateway.raw(message_id)
        if raw is None:
            raise NotFound(f"no message {message_id} on this node")
        return self._post(Post(parse(raw), "assign", process, exclude), timeout)

    def post_internal(self, item: DataItem, target: str) -> str:
        """Schedule a node-signed item (cron ticks) through the same durable path."""
        return self._post(Post(item, "internal", target), 60.0)

    # -- the worker --------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._posts and not self._runnable() and not self.offload.has_done() \
                        and not self._warm and not self._closing:
                    self._cv.wait()
                closing = self._closing and not self._posts
                posts, self._posts = self._posts, []
            if closing:      # (not holding _cv: finishing off-thread work wakes the node through it)
                self.offload.wait_idle()
                if self.offload.has_done():   # fold what was in flight into a last round
                    self._round([])
                return
            gc_was_on = gc.isenabled()
            gc.disable()   # rounds allocate many short-lived acyclic objects; collect between rounds
            try:
                self._round(posts)
            except Exception as exc:  # noqa: BLE001 - the node must survive a bad round
                log.exception("scheduling round failed")
                for p in posts:
                    if not p.done.is_set():
                        p.error = exc if isinstance(exc, NodeError) else NodeError(f"the node failed: {exc}")
                        p.done.set()
                self._recover()
                time.sleep(0.05)
            finally:
                if gc_was_on:
                    gc.enable()

    def warm(self, pids: list[str]) -> None:
        """Rebuild these processes (and their models) in the background now, before anyone needs them."""
        with self._cv:
            self._warm.extend(pids)
            self._cv.notify_all()

    def _runnable(self) -> bool:
        """Whether the queue holds a message whose process is not busy computing off-thread."""
        if not self._queue:
            return False
        if not self.offload.busy:
            return True
        return any(e.pid not in self.offload.busy for e in self._queue)

    def _wake(self) -> None:
        with self._cv:
            self._cv.notify_all()

    def _recover(self) -> None:
        """After a failed commit, forget everything not in the store and reload from it."""
        self.offload.wait_idle()
        self.offload.take_done()      # their messages are pending in the store and will be computed again
        self.cu.close()
        self._procs.clear()
        self._load()

    def _round(self, posts: list[Post]) -> None:
        rnd = Round()
        for post in posts:
            try:
                self._schedule_post(rnd, post)
            except (NodeError, LookupError, ValueError) as exc:
                post.error = exc if isinstance(exc, NodeError) else Rejected(str(exc))
            rnd.posts.append(post)
        with self._cv:
            warm, self._warm = self._warm, []
        for pid in warm:
            if pid not in self.offload.busy and not self.cu.is_live(pid) and self.proc(pid) is not None:
                self.offload.warm(pid, lambda pid=pid: self.cu.runtime(pid).warm())
        for entry, (result, ok, journal), seconds in self.offload.take_done():
            self._finish(rnd, entry, result, ok, journal)
            self.offload.note(entry.pid, seconds, self.cu.uses_llama(entry.pid))
        start = time.perf_counter()
        n = 0
        waiting: list[Entry] = []    # messages of processes busy off-thread: they keep their order
        busy = self.offload.busy
        while self._queue and n < ROUND_MAX_MESSAGES:
            entry = self._queue.popleft()
            pid = entry.pid
            if busy and pid in busy:
                waiting.append(entry)
                continue
            live = self.cu.is_live(pid)
            # off the round: processes known to be slow, runtimes to rebuild, and Evals (code typed by a user
            # may run an LLM or a long loop; nobody can tell before it runs)
            if (pid in self.offload.slow or not live or action_of(entry.msg) == "Eval") \
                    and (live or pid not in rnd.ok_extra):
                # (but a runtime rebuilt from the store must not race this round's commit of its rows:
                # those rebuild inline, with the round's uncommitted rows as `extra`)
                self._start_offloaded(rnd, entry)
                continue
            t0 = time.perf_counter()
            self._compute(rnd, entry)
            self.offload.note(pid, time.perf_counter() - t0, self.cu.uses_llama(pid))
            n += 1
            if n % 64 == 0:
                elapsed = time.perf_counter() - start
                if elapsed > ROUND_MAX_LATENCY or (elapsed > ROUND_MAX_SECONDS and (self._posts or rnd.posts)):
                    break
        if waiting:
            self._queue.extendleft(reversed(waiting))
        self._commit(rnd)
        self._announce(rnd)

    def _start_offloaded(self, rnd: Round, entry: Entry) -> None:
        msg = entry.msg
        msg["Data"] = data_value(entry.data)
        extra = list(rnd.ok_extra.get(entry.pid, ()))
        self.offload.start(entry.pid, entry, lambda: self.cu.compute(entry.pid, msg, extra))

    def _schedule_post(self, rnd: Round, post: Post) -> None:
        item = post.item
        if post.kind == "user" and item.tag("Type") == "Process":
            if self.proc(item.id) is not None:
                return   # the same spawn posted twice: already scheduled
            self._register_process(rnd, item)
            self._schedule(rnd, item, item.id, item.id, "process")
            return
        target = post.target or item.target_id
        if self.proc(target) is None:
            raise NotFound(f"no process {target} on this node")
        if (target, item.id) in rnd.ids or self.store.query(
                "SELECT 1 FROM log WHERE id=? AND pid=?", (item.id, target)):
            return   # idempotent: this item is already in the process's log
        self._schedule(rnd, item, target, item.id, "message", cron=post.kind == "internal",
                       store_item=post.kind != "assign", exclude=post.exclude)

    def _schedule(self, rnd: Round, item: DataItem, pid: str, root: str, kind: str, *, cron: bool = False,
                  store_item: bool = True, exclude: tuple = ()) -> Entry:
        p = self._procs[pid] if pid in self._procs else self.proc(pid)
        slot: Slot = self.su.assign(pid, item.id)
        msg = item_message(item, pid, slot, p["module"], cron=cron, authorities=self._authorities(p))
        data = item.data
        if exclude:    # an assignment that leaves fields out: they are not in the log either
            for name in exclude:
                if name == "Data":
                    data = b""
                elif name not in _KEPT_ON_EXCLUDE:
                    msg.pop(name, None)
            msg["Exclude"] = list(exclude)
        entry = Entry(pid, slot.nonce, item.id, msg, dump_json(msg), data, root, True)
        rnd.new.append(entry)
        rnd.ids.add((pid, item.id))
        if store_item:
            rnd.items.append((item.id, item.owner_address, item.target_id, kind, item.raw, len(item.data),
                              slot.timestamp))
        self._queue.append(entry)
        return entry

    def _compute(self, rnd: Round, entry: Entry) -> None:
        pid = entry.pid
        msg = entry.msg          # already serialised for the log; the runtime only reads it
        msg["Data"] = data_value(entry.data)
        result, ok, journal = self.cu.compute(pid, msg, rnd.ok_extra.get(pid, ()))
        self._finish(rnd, entry, result, ok, journal)

    def _finish(self, rnd: Round, entry: Entry, result: dict, ok: bool, journal: str | None) -> None:
        """Record a computed message in the round and push its outbox."""
        pid = entry.pid
        entry.result = result
        entry.journal = journal
        entry.status = OK if ok else FAILED
        rnd.computed.append(entry)
        if ok and result["Messages"]:
            items = self._outbox_items(entry, result)
            if isinstance(items, str):   # a message that cannot be sent fails the message that sent it
                result = {"Output": result.get("Output", ""), "Messages": [], "Spawns": [], "Assignments": [],
                          "GasUsed": result.get("GasUsed", 0), "Error": items}
                entry.result, entry.journal, entry.status, ok = result, None, FAILED, False
                self.cu.discard(pid)
        if ok:
            rnd.ok_extra.setdefault(pid, []).append((entry.msg_json, entry.data, journal))
            if result["Messages"] or result["Spawns"] or result["Assignments"]:
                self._push(rnd, entry, result, items if result["Messages"] else [])

    def _outbox_items(self, entry: Entry, result: dict) -> list | str:
        """The signed items of a result's outbox Messages (None where one is dropped), or the Error text
        when one can never be sent (its tags are not text): then nothing of the result may go out."""
        module = self._procs[entry.pid]["module"]
        items: list = []
        for out in result["Messages"]:
            try:
                items.append(mu.push_message(self.key, entry.pid, module, entry.root, out))
            except mu.UnsendableMessage as exc:
                return f"message not sent: {exc}; nothing of this message's effects was kept"
            except (mu.RejectedItem, ValueError) as exc:
                self._drop(entry.pid, f"outbox message not pushed: {exc}")
                items.append(None)
        return items

    def _push(self, rnd: Round, entry: Entry, result: dict, items: list) -> None:
        pid = entry.pid
        module = self._procs[pid]["module"]
        for item in items:
            if item is None:
                continue
            target = item.target_id
            if self.proc(target) is None:
                self._drop(pid, f"outbox message to {target}: no such process on this node")
                continue
            self._schedule(rnd, item, target, entry.root, "message", store_item=False)
        for out in result["Spawns"]:
            try:
                item = mu.push_spawn(self.key, pid, module, entry.root, out, self.address)
                self._register_process(rnd, item)
            except (mu.RejectedItem, LookupError, ValueError) as exc:
                self._drop(pid, f"outbox spawn refused: {exc}")
                continue
            self._schedule(rnd, item, item.id, item.id, "process")
            notice = mu.spawned_notice(self.key, pid, item)
            self._schedule(rnd, notice, pid, entry.root, "message", store_item=False)
        for out in result["Assignments"]:
            self._assign(rnd, pid, entry, out)

    def _assign(self, rnd: Round, pid: str, entry: Entry, out: object) -> None:
        if not isinstance(out, dict) or not isinstance(out.get("Processes"), list):
            self._drop(pid, "outbox assignment without a Processes list")
            return
        mid = out.get("Message")
        raw = next((r[4] for r in rnd.items if r[0] == mid), None) or self.gateway.raw(mid)
        if raw is None:
            staged = next((e for e in rnd.new if e.id == mid), None)
            raw = mu.rebuild_pushed(self.key, staged.msg, staged.data) if staged else None
        if raw is None:
            self._drop(pid, f"assignment of unknown message {mid}")
            return
        item = parse(raw)
        for target in out["Processes"]:
            if not isinstance(target, str) or self.proc(target) is None:
                self._drop(pid, f"assignment to {target!r}: no such process on this node")
                continue
            if (target, item.id) in rnd.ids or self.store.query("SELECT 1 FROM log WHERE id=? AND pid=?",
                                                                 (item.id, target)):
                continue
            self._schedule(rnd, item, target, entry.root, "message", store_item=False)

    def _logged_item(self, item_id: str) -> bytes | None:
        """Bytes of a node-signed message that is kept only in the log (see _rebuild_item)."""
        rows = self.store.query("SELECT msg, data FROM log WHERE id=? LIMIT 1", (item_id,))
        return mu.rebuild_pushed(self.key, json.loads(rows[0][0]), rows[0][1] or b"") if rows else None

    def _drop(self, pid: str, why: str) -> None:
        self.stats["dropped"] += 1
        log.info("process %s: %s", pid, why)

    def _commit(self, rnd: Round) -> None:
        commit_round(self.store, rnd)
        self.stats["rounds"] += 1
        self.stats["computed"] += len(rnd.computed)

    def _announce(self, rnd: Round) -> None:
        for post in rnd.posts:
            post.done.set()
        if not rnd.computed:
            return
        with self._cv:
            for e in rnd.computed:
                self._results[e.id + e.pid] = e.result
                self._result_order.append(e.id + e.pid)
            while len(self._result_order) > RESULTS_KEPT:
                self._results.pop(self._result_order.popleft(), None)
            self._cv.notify_all()
        subs = self.subscribers
        if subs.any():
            subs.publish([(e.pid, {"process": e.pid, "id": e.id, "from": e.frm, "action": action_of(e.msg),
                                   "result": e.result}) for e in rnd.computed if subs.watched(e.pid)])



__all__ = ["Node", "NodeError", "NotFound", "Rejected", "StoreError", "b64url", "default_data_dir"]
