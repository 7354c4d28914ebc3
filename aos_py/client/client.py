"""Client: the one API the REPL, tests and scripts use to talk to an AO node.

Items are built and signed here with the caller's wallet, then posted; the node
answers once they are durably scheduled. Against the embedded node, the first
OS process to open a data directory hosts the node; the others share it over
<data_dir>/node.sock, and one of them takes over if the host goes away. With
MU_URL and CU_URL set (or through Client.remote), the node is reached over the
AO legacy HTTP protocols instead: `aos serve` on another port or machine, or a
legacy AO network (http_backend.py).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from aos_py import __version__
from aos_py.client.backend import Host, LocalBackend, RemoteBackend, try_lock
from aos_py.client.errors import ClientError, NodeUnavailable, RejectedError
from aos_py.node import ans104
from aos_py.node.ans104 import ANS104Error
from aos_py.node.node import default_data_dir
from aos_py.node.wallet import Wallet

SDK = "aos-py"
Tags = list[tuple[str, str]]


def _check_tags(tags) -> Tags:
    out = []
    for t in tags or ():
        if not (isinstance(t, (tuple, list)) and len(t) == 2):
            raise RejectedError(f"tags must be (name, value) pairs, got {t!r}")
        out.append((str(t[0]), str(t[1])))
    return out


class _Sub:
    def __init__(self, process: str, callback: Callable[[dict], None]) -> None:
        self.process, self.callback = process, callback
        self.unsub: Callable[[], None] | None = None
        self.active = True


class Client:
    """A connection to a node; see Client.open."""

    def __init__(self, data_dir: Path, node_kwargs: dict | None = None, remote=None) -> None:
        self.data_dir = data_dir
        self._node_kwargs = node_kwargs or {}
        self._host: Host | None = None
        self._backend = None
        self._lock = threading.RLock()
        self._subs: list[_Sub] = []
        self._closed = False
        self._remote = remote      # an HttpBackend when this client drives a node over HTTP
        if remote is not None:
            self._backend = remote
        else:
            self._attach()

    @classmethod
    def open(cls, data_dir: str | Path | None = None, **node_kwargs) -> Client:
        """Open the embedded node of `data_dir` (default $AOS_PY_HOME or ~/.aos-py), hosting it if nobody does.

        A hosted node runs its services (APM registry, wAR, Llama Herder and workers) unless services=False."""
        d = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        d.mkdir(parents=True, exist_ok=True)
        from aos_py.client.http_backend import Endpoints, HttpBackend

        endpoints = Endpoints.from_env()
        if endpoints is not None:   # MU_URL and CU_URL set, as aos reads them: drive that node over HTTP
            return cls(d, remote=HttpBackend(endpoints))
        node_kwargs.setdefault("services", True)
        return cls(d, node_kwargs)

    @classmethod
    def remote(cls, mu_url: str, cu_url: str | None = None, gateway_url: str | None = None, *,
               graphql_url: str | None = None, scheduler: str | None = None, module: str | None = None,
               authority: str | None = None, data_dir: str | Path | None = None) -> Client:
        """A client of a node reached over HTTP (`aos serve`, or a legacy AO network's MU, CU and gateway).

        `data_dir` only holds this machine's shell state (live-feed cursors); no node is opened there."""
        from aos_py.client.http_backend import Endpoints, HttpBackend

        gateway = (gateway_url or mu_url).rstrip("/")
        ep = Endpoints(mu_url.rstrip("/"), (cu_url or mu_url).rstrip("/"), gateway,
                       graphql_url or gateway + "/graphql", scheduler, module, authority)
        d = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        return cls(d, remote=HttpBackend(ep))

    # -- connection management -------------------------------------------------

    def _attach(self, wait: float = 10.0) -> None:
        deadline = time.monotonic() + wait
        last: Exception | None = None
        while True:
            fd = try_lock(self.data_dir)
            if fd is not None:
                try:
                    self._host = Host(self.data_dir, fd, self._node_kwargs)
                except BaseException as exc:
                    import os
                    os.close(fd)
                    from aos_py.client.errors import translate
                    raise translate(exc) from None
                self._backend = LocalBackend(self._host.node)
                break
            try:
                self._backend = RemoteBackend(self.data_dir)
                break
            except NodeUnavailable as exc:   # the host is starting or just went away
                last = exc
            if time.monotonic() > deadline:
                raise NodeUnavailable(f"no node could be hosted or reached for {self.data_dir}: {last}")
            time.sleep(0.05)
        for sub in self._subs:
            if sub.active:
                sub.unsub = self._backend.subscribe(sub.process, sub.callback)

    def _call(self, method: str, *args, **kwargs):
        for attempt in range(3):
            backend = self._backend
            if self._closed or backend is None:
                raise ClientError("this client is closed")
            try:
                return backend.call(method, *args, **kwargs)
            except NodeUnavailable:
                if attempt == 2 or self._remote is not None:
                    raise
                with self._lock:
                    if self._backend is backend:
                        backend.close()
                        self._attach()
        raise AssertionError("unreachable")

    @property
    def is_remote(self) -> bool:
        """Whether this client drives a node over HTTP (MU_URL / CU_URL) instead of this machine's node."""
        return self._remote is not None

    @property
    def hosting(self) -> bool:
        """Whether this OS process hosts the node."""
        return self._host is not None

    @property
    def node(self):
        """The hosted Node object (None when connected to another process's node)."""
        return self._host.node if self._host else None

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for sub in self._subs:
                sub.active = False
            if self._backend is not None:
                self._backend.close()
            if self._host is not None:
                self._host.close()
                self._host = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- items -----------------------------------------------------------------

    def authority(self) -> str:
        """The node's address: the Authority of the processes it spawns, and signer of pushed messages."""
        return self._call("authority")

    def _build(self, w: Wallet, **kw) -> bytes:
        if not isinstance(w, Wallet):
            raise RejectedError(f"expected a Wallet, got {type(w).__name__}")
        if self._remote is not None:
            self._remote.wallet = w     # signs this client's monitor items
        try:
            return ans104.build(w, **kw).raw
        except ANS104Error as exc:
            raise RejectedError(str(exc)) from None

    def submit(self, raw: bytes) -> str:
        """Post an already-signed item; returns its id once durably scheduled."""
        return self._call("submit", bytes(raw))

    def spawn(self, w: Wallet, *, name: str | None = None, module: str | None = None, tags: Tags = (),
              data: str | bytes = "", cron: str | None = None, timeout: float = 30.0) -> str:
        """Spawn a process owned by `w`; returns its id once the spawn has been computed."""
        node = self.authority()
        all_tags: Tags = [("App-Name", "aos")]
        if name:
            all_tags.append(("Name", name))
        all_tags += _check_tags(tags)
        if not any(n.lower() == "aos-version" for n, _ in all_tags):
            all_tags.append(("aos-Version", __version__))   # the client that spawned it (`aos --list` shows it)
        all_tags.append(("Authority", node))
        if cron:
            all_tags += [("Cron-Interval", cron), ("Cron-Tag-Action", "Cron")]
        if not data:
            all_tags.append(("Content-Type", "text/plain"))
            data = " "
        scheduler = self._remote.scheduler if self._remote is not None else node
        all_tags += [("SDK", SDK), ("Data-Protocol", "ao"), ("Variant", "ao.TN.1"), ("Type", "Process"),
                     ("Module", module or self.default_module()), ("Scheduler", scheduler),
                     ("Timestamp", str(int(time.time() * 1000)))]
        pid = self.submit(self._build(w, tags=all_tags, data=data))
        self.wait_result(pid, pid, timeout)
        return pid

    def send(self, w: Wallet, target: str, *, data: str | bytes = "", tags: Tags = (),
              anchor: str | None = None) -> str:
        """Send a message to `target`; returns its id once it is durably in the process's log.

        Each send gets a fresh random anchor, so sending the same thing twice is two messages even
        with a deterministic (Ed25519) signature; pass `anchor` to make a retry idempotent instead."""
        all_tags = _check_tags(tags)
        if not data:
            all_tags.append(("Content-Type", "text/plain"))
            data = " "
        all_tags += [("SDK", SDK), ("Data-Protocol", "ao"), ("Variant", "ao.TN.1"), ("Type", "Message")]
        try:
            ans104.id_bytes(target, "target")
        except ANS104Error as exc:
            raise RejectedError(str(exc)) from None
        return self.submit(self._build(w, target=target, anchor=anchor or secrets.token_urlsafe(24),
                                       tags=all_tags, data=data))

    def eval(self, w: Wallet, process: str, code: str, timeout: float = 30.0) -> dict:
        """Evaluate Lua in `process` (Action=Eval) and return the result."""
        mid = self.send(w, process, data=code, tags=[("Action", "Eval")])
        return self.wait_result(process, mid, timeout)

    # -- reads -----------------------------------------------------------------

    def wait_result(self, process: str, message_id: str, timeout: float = 30.0) -> dict:
        return self._call("wait_result", process, message_id, timeout)

    def result(self, process: str, message_id: str) -> dict | None:
        return self._call("result", process, message_id)

    def results(self, process: str, *, after: int | None = None, limit: int = 25, sort: str = "ASC") -> list[dict]:
        return self._call("results", process, after=after, limit=limit, sort=sort)

    def feed(self, process: str, *, after: int | None = None, limit: int = 100) -> list[dict]:
        """Like results() (oldest first), each row also naming the message's sender (`from`) and `action`."""
        return self._call("feed", process, after=after, limit=limit)

    def dryrun(self, process: str, *, data: str | bytes = "", tags: Tags = (), owner: str | None = None) -> dict:
        return self._call("dryrun", process, data=data, tags=_check_tags(tags), owner=owner)

    def monitor(self, process: str) -> None:
        self._call("monitor", process, True)

    def unmonitor(self, process: str) -> None:
        self._call("monitor", process, False)

    def find_processes(self, owner: str, name: str | None = None) -> list[dict]:
        return self._call("find_processes", owner, name)

    def process_info(self, process: str) -> dict | None:
        return self._call("process_info", process)

    def subscribe(self, process: str, callback: Callable[[dict], None]) -> Callable[[], None]:
        """Call `callback(event)` for every message computed for `process` (from a node thread)."""
        sub = _Sub(process, callback)
        with self._lock:
            sub.unsub = self._backend.subscribe(process, callback)
            self._subs.append(sub)

        def unsubscribe() -> None:
            with self._lock:
                sub.active = False
                if sub in self._subs:
                    self._subs.remove(sub)
                if sub.unsub is not None:
                    sub.unsub()
        return unsubscribe

    def add_data(self, path_or_bytes: str | Path | bytes, tags: Tags = ()) -> str:
        """Store a file or bytes in the gateway; returns its content id (usable as /data/<id>)."""
        src = path_or_bytes
        if isinstance(src, (str, Path)):
            src = str(Path(src).expanduser().resolve())
        return self._call("add_data", src, _check_tags(tags))

    def list_data(self, tag_name: str | None = None, tag_value: str | None = None) -> list[dict]:
        return self._call("list_data", tag_name, tag_value)

    def default_module(self) -> str:
        return self._call("default_module")

    # -- the node's own services ---------------------------------------------------------------

    def services(self) -> dict:
        """Ids of the node's APM registry, wAR token, Llama Herder, its workers and model ({} without them)."""
        return self._call("services")

    def faucet(self, process: str, amount: str | int | float = 1) -> dict:
        """Credit `process` with `amount` wAR from the local token (it gets a Credit-Notice)."""
        return self._call("faucet", process, str(amount))

    def llama_engine(self) -> str:
        """The engine behind `require("llama")` on this node: the hosting process's $AOS_PY_LLAMA_ENGINE
        (wasm by default, native = llama.cpp)."""
        return self._call("llama_engine")

    def herd_status(self) -> dict:
        """The Llama Herder's model, fees, workers (idle / busy, jobs done) and queue."""
        return self._call("herd_status")

    def herd_workers(self, n: int) -> list[str]:
        """Make the herd `n` workers strong; returns their ids."""
        return self._call("herd_workers", n)

    def herd_use(self, model_id: str) -> dict:
        """Make the herd serve the model `model_id` of the data store."""
        return self._call("herd_use", model_id)
