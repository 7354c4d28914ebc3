"""The in-memory AO node of `aos test`: aolite's model of AO, with aos-py's process runtime.

Processes have free-form ids ("sender", "token"); each is a `ProcessRuntime` (a sandboxed Lua 5.3 state
with the aos 2.0.4 library) driven directly, without signing, SQLite or threads. Messages get aolite's
ids (`<From>#<Reference>`, the sender's own ao.send counter), wait in per-process queues and run when the
scheduler runs: after every `send` while auto-scheduling is on (the default), or on `run()`. A process
drains its queue when it runs; processes run in the order they became ready. Everything is synchronous
and deterministic.

The same node serves the spec files' `require("aolite")` (lua/testing/aolite.lua) and the pytest
fixture (aos_py/testing/pytest_plugin.py). This module is the node itself (spawning, queues, the
scheduler, the clock); messages.py shapes the messages, message_store.py keeps them, process.py makes
the processes and loading.py finds the Lua they load.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from aos_py.runtime import HandleError
from aos_py.testing.loading import ModuleFiles, blueprint_code, install_package
from aos_py.testing.message_store import MessageStore, StoredMessage
from aos_py.testing.messages import (
    DEFAULT_MODULE,
    SimError,
    _dumps,
    _loads,
    _text,
    error_text,
    eval_value,
    handled_view,
    outbox_message,
    outside_message,
    sender_and_target,
    spawn_message,
    spawned_notice,
    strip_ansi,
    tag_list,
    tag_value,
)
from aos_py.testing.process import NODE_ID, SimProcess, first_cron_due, new_process

__all__ = ["NODE_ID", "SimError", "SimNode", "SimProcess", "_dumps", "_loads", "_text", "tag_list"]

MAX_MESSAGES_PER_RUN = 100_000       # a scheduler run that handles more is a message loop
DEFAULT_CYCLES = 1000                # aolite's default cycle limit of one scheduler run


class SimNode:
    """An in-memory AO node: aolite's API over aos-py process runtimes."""

    def __init__(self, cwd: str | Path | None = None, *, timestamp: int | None = None, block_height: int = 0,
                 echo: Callable[[str], None] | None = None) -> None:
        self.files = ModuleFiles(Path(cwd) if cwd is not None else None)
        self.processes: dict[str, SimProcess] = {}
        self.echo = echo or print
        self.messages = MessageStore(self.echo)
        self.store = self.messages.entries           # id -> StoredMessage
        self.history = self.messages.history         # target -> ids sent to it
        self.ids = self.messages.ids
        self.ready: dict[str, None] = {}
        self.auto = True
        flag = os.environ.get("AOLITE_PRINT_OUTPUT", "")
        self.print_output = flag not in ("", "0")
        self.timestamp = int(time.time() * 1000) if timestamp is None else int(timestamp)
        self.block_height = int(block_height)
        self.data: dict[str, Path] = {}              # /data/<id> mounts
        self.services: dict | None = None
        self._closed = False

    @property
    def message_log(self) -> str | None:
        """The file every new message is appended to as a JSON line (None: no log)."""
        return self.messages.log_path

    @message_log.setter
    def message_log(self, path: str | None) -> None:
        self.messages.log_path = path

    def add_data(self, data_id: str, path: str | Path) -> None:
        """Mount a host file as /data/<data_id> for every process."""
        self.data[data_id] = Path(path)

    def resolve_data(self, data_id: str) -> Path | None:
        return self.data.get(data_id)

    # -- spawning ----------------------------------------------------------------------------------

    def spawn(self, pid: str, source: str | None = None, tags: object = None, *, owner: str | None = None,
              parent: str | None = None, blueprints: list[str] | tuple = (), packages: list[str] | tuple = (),
              search_path: str | None = None, data: str | None = None) -> SimProcess:
        """aolite's spawnProcess(id, sourceOrModulePath, tags), plus blueprints / packages installed first.

        `source` is Lua code when the tags say On-Boot = Data, else a module path ("path.to.module",
        resolved like require), a file path ("dir/file.lua") or, when it plainly is code, code. `None`: no
        code. `parent`: spawned by that process (its Spawns), which becomes the Owner.
        """
        if not isinstance(pid, str) or not pid:
            raise SimError("processId must be defined")
        if pid in self.processes:
            raise SimError(f"aolite: Process with ID {pid} already exists")
        if search_path:
            self.files.search_path = search_path
        tlist = tag_list(tags)
        tmap = {t["name"]: t["value"] for t in tlist}
        module = str(tmap.get("Module") or DEFAULT_MODULE)
        owner = owner or parent or pid
        code, module_path = self.files.boot_code(source, tmap if tags is not None else None, parent)
        proc = new_process(pid, owner, module, tlist, tags_as_globals=tags is not None, now=self.timestamp,
                           services=self.services, user_module=self.files.user_module,
                           data_resolver=self.resolve_data)
        boot = spawn_message(pid, owner, module, tlist, parent, data, self.timestamp, self.block_height)
        self.processes[pid] = proc
        res = self._handle(proc, boot, deliver=False)
        if res.get("Error"):
            raise SimError(f"aolite: spawning {pid} failed: {error_text(res['Error'])}")
        proc.hook("after_boot")
        for name in blueprints or ():
            self.run_code(pid, blueprint_code(name), what=f"loading blueprint {name}")
        for name in packages or ():
            self._install_package(pid, name)
        if code is not None:
            self.run_code(pid, code, what=f"loading {module_path or 'the source of ' + pid}")
        proc.hook("install_eval")
        if module != DEFAULT_MODULE:
            proc.use_module()
        if self.auto:
            self.run()
        return proc

    # -- code, blueprints and packages ------------------------------------------------------------

    def run_code(self, pid: str, code: str, what: str = "evaluating code") -> dict:
        """Evaluate Lua in a process as its Owner's Eval message would (not recorded as a message).
        Raises SimError when the code fails; returns the result."""
        proc = self._proc(pid)
        with proc.acting_owner() as owner:
            msg = {"Id": self.ids.next("~load-"), "From": owner, "Owner": owner, "Target": pid,
                   "Module": proc.module, "Timestamp": self.timestamp, "Block-Height": self.block_height,
                   "Tags": [{"name": "Action", "value": "Eval"}], "Data": code}
            res = self._handle(proc, msg)
        if res.get("Error"):
            raise SimError(f"{pid}: {what} failed: {error_text(res['Error'])}")
        return res

    def load_file(self, pid: str, path: str | Path) -> dict:
        """Evaluate a Lua file in a process (like `.load FILE`; its requires resolve like the spec's)."""
        p = Path(path)
        if not p.is_absolute():
            p = self.files.base() / p
        if not p.is_file():
            raise SimError(f"no such file: {path}")
        code = self.files.file_module(p)
        try:
            res = self.run_code(pid, code, what=f"loading {self.files.display(p)}")
        finally:   # a later load of the same file runs it again (like .load)
            self._proc(pid).runtime.host_call(b"package.loaded[...] = nil", self.files.file_module_name(p).encode())
        if self.auto:
            self.run()
        return res

    def load_blueprint(self, pid: str, name: str) -> dict:
        """Load one of aos-py's blueprints (lua/blueprints/<name>.lua) into a process."""
        res = self.run_code(pid, blueprint_code(name), what=f"loading blueprint {name}")
        if self.auto:
            self.run()
        return res

    def install_package(self, pid: str, spec: str) -> str:
        """Install a shipped APM package (packages/) and its dependencies into a process. Returns name@version."""
        done = self._install_package(pid, spec)
        if self.auto:
            self.run()
        return done

    def _install_package(self, pid: str, spec: str) -> str:
        return install_package(spec, lambda code, what: self.run_code(pid, code, what=what))

    # -- messages ----------------------------------------------------------------------------------

    def _proc(self, pid: object) -> SimProcess:
        proc = self.processes.get(pid) if isinstance(pid, str) else None
        if proc is None:
            raise SimError(f"aolite: No such process: {pid}")
        return proc

    def _record(self, msg: dict, target: str, queue: bool) -> StoredMessage:
        entry = self.messages.record(msg, target)
        proc = self.processes.get(target)
        if queue and proc is not None:
            proc.queue.append(msg["Id"])
            self.ready[target] = None
        return entry

    def _user_message(self, msg: dict, check_target: bool = True) -> dict:
        frm, target = sender_and_target(msg)
        proc = self._proc(frm)
        if check_target and target not in self.processes:
            raise SimError(f"aolite: Target process not found: {target}")
        try:
            out = _loads(proc.hook("send", _dumps(msg)))
        except SimError as exc:
            raise SimError(f"send: {exc}") from None
        return outbox_message(out, frm, proc.module, None, self.ids, self.timestamp, self.block_height)

    def send(self, msg: dict) -> dict:
        """aolite's send: the From process's ao.send builds the message; then the scheduler runs (if auto)."""
        m = self._user_message(msg)
        self._record(m, m["Target"], queue=True)
        if self.auto:
            self.run()
        return self.message(m["Id"])

    def queue(self, msg: dict) -> dict:
        """Queue a message without running the scheduler (aolite's documented queue())."""
        m = self._user_message(msg)
        self._record(m, m["Target"], queue=True)
        return self.message(m["Id"])

    def inject(self, frm: str, target: str, tags: list[tuple[str, object]] | list[dict], data: str = "",
               *, cron: bool = False, run: bool = True) -> dict:
        """A message from an identity that is not a process of this node (the node itself, a wallet)."""
        ref = self.ids.outside_reference()
        tl = tag_list(list(tags))
        mid = self.ids.unused(f"{frm}#{ref}")
        msg = outside_message(mid, frm, target, tl, data, cron=cron, timestamp=self.timestamp,
                              block_height=self.block_height)
        self._record(msg, target, queue=True)
        if run and self.auto:
            self.run()
        return self.message(mid)

    def eval(self, pid: str, code: str) -> str | None:
        """aolite's eval: an EvalRequest from the process to itself; returns the value as Lua source
        (`return ...`), or None. Raises SimError("Error in evaluation: ...") when the code fails."""
        proc = self._proc(pid)
        if not isinstance(code, str):
            raise SimError("eval needs the code as a string")
        if self.auto:
            self.run()
        req = self._user_message({"From": pid, "Target": pid, "Action": "EvalRequest", "Data": code})
        self._record(req, pid, queue=False)
        ref = next((t["value"] for t in req["Tags"] if t["name"] == "Reference"), None)
        response: dict | None = None

        def intercept(m: dict) -> bool:
            nonlocal response
            tags = {t.get("name"): t.get("value") for t in m["Tags"]}
            if m["Target"] == pid and tags.get("Action") == "EvalResponse" and tags.get("X-Reference") == ref:
                self._record(m, pid, queue=False).handled()
                response = handled_view(m)
                return True
            return False

        proc.hook("eval_first")
        try:
            res = self._handle(proc, req, intercept=intercept)
        finally:
            proc.hook("eval_restore")
        self.store[req["Id"]].handled()
        if self.auto:
            self.run()
        return eval_value(res, response)

    # -- the scheduler -----------------------------------------------------------------------------

    def run(self, cycles: int | None = None) -> int:
        """Run ready processes until their queues are empty (aolite's runScheduler); returns messages handled."""
        limit = DEFAULT_CYCLES if cycles is None else int(cycles)
        handled = 0
        for _ in range(max(limit, 0)):
            if not self.ready:
                break
            batch = list(self.ready)
            self.ready.clear()
            for pid in batch:
                proc = self.processes.get(pid)
                while proc is not None and proc.queue:
                    mid = proc.queue.popleft()
                    entry = self.store.get(mid)
                    if entry is None:
                        continue
                    self._handle(proc, entry.raw)
                    entry.handled()
                    handled += 1
                    if handled > MAX_MESSAGES_PER_RUN:
                        raise SimError(f"the scheduler handled more than {MAX_MESSAGES_PER_RUN:,} messages in one "
                                       "run: is a process answering its own messages forever?")
                    proc = self.processes.get(pid)
        return handled

    def _handle(self, proc: SimProcess, msg: dict, *, deliver: bool = True,
                intercept: Callable[[dict], bool] | None = None) -> dict:
        try:
            res = proc.runtime.handle(msg, proc.env)
        except HandleError as exc:
            raise SimError(f"Error in process {proc.id}: {exc}") from None
        for text in proc.keep_result(msg.get("Id"), res):
            if self.print_output:
                self.echo(f"[{proc.id}] {text}")
        if not res.get("Error") and (deliver or intercept):
            self._deliver(proc, res, msg.get("Id"), intercept)
        return res

    def _deliver(self, proc: SimProcess, res: dict, pushed_for: str | None,
                 intercept: Callable[[dict], bool] | None = None) -> None:
        for out in res.get("Messages") or []:
            if not isinstance(out, dict):
                continue
            m = outbox_message(out, proc.id, proc.module, pushed_for, self.ids, self.timestamp, self.block_height)
            if intercept is not None and intercept(m):
                continue
            target = m.get("Target")
            if not isinstance(target, str):
                continue
            self._record(m, target, queue=True)
        for sp in res.get("Spawns") or []:
            if isinstance(sp, dict):
                self._spawn_child(proc, sp, pushed_for)
        for a in res.get("Assignments") or []:
            if not isinstance(a, dict) or not isinstance(a.get("Processes"), list):
                continue
            entry = self.store.get(a.get("Message"))
            if entry is None:
                continue
            for target in a["Processes"]:
                if isinstance(target, str) and target in self.processes:
                    self._record(entry.raw, target, queue=True)

    def _spawn_child(self, parent: SimProcess, sp: dict, pushed_for: str | None) -> None:
        child = parent.next_child_id(self.processes)
        tags = [dict(t) for t in (sp.get("Tags") or []) if isinstance(t, dict)]
        ref = tag_value(tags, "Reference")
        data = sp.get("Data")
        on_boot = tag_value(tags, "On-Boot")
        try:
            self.spawn(child, data if on_boot == "Data" else None,
                       [t for t in tags if t.get("name") != "On-Boot"] + (
                           [{"name": "On-Boot", "value": "Data"}] if on_boot == "Data" else []),
                       parent=parent.id, data=data if isinstance(data, str) else None)
        except SimError as exc:
            if child in self.processes:
                self.processes[child].errors.append(str(exc))
            else:
                parent.errors.append(str(exc))
                return
        mid = self.ids.referenced(parent.id, ref, f"{parent.id}#~spawn-")
        notice = spawned_notice(mid, parent.id, parent.module, child, tags, pushed_for, self.timestamp,
                                self.block_height)
        self._record(notice, parent.id, queue=True)

    # -- reading messages --------------------------------------------------------------------------

    def message(self, mid: str) -> dict | None:
        return self.messages.current(mid)

    def message_json(self, mid: str) -> tuple[bytes | None, int]:
        return self.messages.json(mid)

    def history_of(self, pid: str) -> list[str] | None:
        """Ids of the messages sent to `pid`, oldest first (None: no such process and nothing sent to it)."""
        if pid not in self.processes and pid not in self.history:
            return None
        return list(self.history.get(pid, ()))

    def all_ids(self) -> list[str]:
        return list(self.store)

    def queued(self, pid: str) -> list[str] | None:
        proc = self.processes.get(pid)
        return list(proc.queue) if proc is not None else None

    def reorder_queue(self, pid: str, ids: list[str]) -> None:
        proc = self.processes.get(pid)
        if proc is None:
            raise SimError(f"No queue found for processId: {pid}")
        proc.reorder(ids)

    def clear_messages(self, pid: str) -> None:
        if pid is None:
            raise SimError("processId must be provided")
        self.history[pid] = []

    def clear_all(self) -> None:
        """aolite's clearAllProcesses: every process, queue and message goes."""
        for proc in self.processes.values():
            proc.runtime.close()
        self.processes.clear()
        self.messages.clear()
        self.ready.clear()
        self.services = None

    def close(self) -> None:
        self.clear_all()
        self._closed = True

    # -- time, cron, output ----------------------------------------------------------------------

    def set_timestamp(self, ms: int) -> None:
        self.timestamp = int(ms)

    def advance_time(self, ms: int) -> int:
        """Move the clock forward; processes spawned with a Cron-Interval get the ticks that fall due.
        Returns the ticks sent."""
        end = self.timestamp + int(ms)
        ticks = 0
        while (due := first_cron_due(self.processes, end)) is not None:
            at, pid = due
            self.timestamp = max(self.timestamp, at)
            self.processes[pid].schedule_cron(at)
            self.tick(pid)
            ticks += 1
            if ticks > MAX_MESSAGES_PER_RUN:
                raise SimError("too many cron ticks in one advance")
        self.timestamp = end
        return ticks

    def tick(self, pid: str, tags: object = None) -> dict:
        """One cron message for a process: its Cron-Tag-<Name> spawn tags as <Name> tags (plus `tags`)."""
        cron_tags = self._proc(pid).cron_tags()
        return self.inject(NODE_ID, pid, cron_tags + tag_list(tags), "", cron=True)

    def prints(self, pid: str) -> list[str]:
        return [strip_ansi(p) for p in self._proc(pid).prints]

    def output(self, pid: str) -> str:
        return "\n".join(self.prints(pid))

    def errors(self, pid: str) -> list[str]:
        return list(self._proc(pid).errors)

    def last_result(self, pid: str) -> dict | None:
        proc = self._proc(pid)
        return dict(proc.results[-1]) if proc.results else None

    def clear_output(self, pid: str) -> None:
        proc = self._proc(pid)
        proc.prints.clear()
        proc.errors.clear()
