"""Backends behind Client: the node hosted in this OS process, or one reached over <data_dir>/node.sock.

The first process to take the data directory's lock hosts the node and serves
it on a Unix socket (authenticated with a per-directory key readable only by
the user); later processes connect to it. Items are signed by the client, so
wallets never cross the socket.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import queue
import secrets
import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client as _Connect
from multiprocessing.connection import Listener, answer_challenge, deliver_challenge
from pathlib import Path

from aos_py.client.errors import BY_NAME, ClientError, NodeUnavailable, translate

log = logging.getLogger("aos_py.client")

HANDSHAKE_SECONDS = 5       # a connecting client must log in within this
OUTGOING_LIMIT = 20000      # replies and events queued for one client before it is disconnected
CALL_THREADS = 16           # threads answering node calls for connected clients
WAIT_THREADS = 256          # threads blocked in wait_result (more calls queue for a free one)

# methods a connected client may call on the host's node
METHODS = ("submit", "wait_result", "result", "results", "dryrun", "monitor", "find_processes",
           "add_data", "list_data", "default_module", "authority", "process_info",
           "services", "faucet", "herd_status", "herd_workers", "herd_use", "llama_engine", "feed")


class LocalBackend:
    """Calls straight into a Node living in this process."""

    def __init__(self, node) -> None:
        self.node = node

    def call(self, method: str, *args, **kwargs):
        if method not in METHODS:
            raise ClientError(f"unknown node method {method!r}")
        try:
            return getattr(self, "_" + method, None)(*args, **kwargs) if hasattr(self, "_" + method) \
                else getattr(self.node, method)(*args, **kwargs)
        except ClientError:
            raise
        except Exception as exc:  # noqa: BLE001 - every node error becomes a ClientError
            raise translate(exc) from None

    def _add_data(self, source, tags=()):
        return self.node.gateway.add_data(source, list(tags))

    def _list_data(self, tag_name=None, tag_value=None):
        tags = [(tag_name, tag_value)] if tag_name else []
        return self.node.gateway.find(tags, kind="file")

    def _authority(self):
        return self.node.address

    def _svc(self):
        from aos_py.node.services import ServiceError

        if self.node.services is None:
            raise ServiceError("this node runs without its services (APM registry, wAR, Llama Herder)")
        return self.node.services

    def _services(self):
        return self.node.services.ids() if self.node.services is not None else {}

    def _faucet(self, recipient, amount=1):
        return self._svc().faucet(recipient, amount)

    def _herd_status(self):
        return self._svc().herd_status()

    def _herd_workers(self, n):
        return self._svc().set_workers(n)

    def _herd_use(self, model_id):
        return self._svc().use_model(model_id)

    def _process_info(self, pid):
        p = self.node.proc(pid)
        if p is None:
            return None
        return {"id": p["id"], "owner": p["owner"], "name": p["name"], "module": p["module"],
                "created": p["created"], "cron": p["cron"], "monitored": p["monitored"]}

    def subscribe(self, process: str, callback: Callable[[dict], None]) -> Callable[[], None]:
        return self.node.subscribe(process, callback)

    def close(self) -> None:
        pass


class Host:
    """Owns the data directory's lock, the Node, and the socket server.

    The server is built so that no client can hold up another: the login handshake runs on the
    connection's own thread under a time limit; every connection has its own writer thread and a bounded
    outgoing queue (a client that stops reading is disconnected, not waited for); requests run on a
    bounded pool of threads (waits for results on a pool of their own, so they never starve submits)."""

    def __init__(self, data_dir: Path, lock_fd: int, node_kwargs: dict) -> None:
        from aos_py.node.node import Node

        self.data_dir = data_dir
        self.lock_fd = lock_fd
        self.node = Node(data_dir, **node_kwargs)
        self.sock = data_dir / "node.sock"
        key_path = data_dir / "node.authkey"
        if not key_path.exists():   # written whole, then renamed: a reader never sees half a key
            tmp = key_path.with_name(f".node.authkey.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
            os.replace(tmp, key_path)
        self.authkey = key_path.read_bytes()
        if self.sock.exists() or self.sock.is_symlink():
            self.sock.unlink()
        self.local = LocalBackend(self.node)
        self._closed = False
        self._conns: set[_Conn] = set()
        self._conns_lock = threading.Lock()
        self._calls = ThreadPoolExecutor(max_workers=CALL_THREADS, thread_name_prefix="aos-node-call")
        self._waits = ThreadPoolExecutor(max_workers=WAIT_THREADS, thread_name_prefix="aos-node-wait")
        try:
            self.listener = Listener(str(self.sock), family="AF_UNIX")    # handshake per connection, below
        except OSError as exc:   # e.g. a data dir path too long for a Unix socket: run unshared
            log.warning("node not shared with other processes (cannot listen on %s: %s)", self.sock, exc)
            self.listener = None
            return
        os.chmod(self.sock, 0o600)
        self._thread = threading.Thread(target=self._accept, name="aos-node-socket", daemon=True)
        self._thread.start()

    def connections(self) -> int:
        """Clients connected now (for tests and status)."""
        with self._conns_lock:
            return len(self._conns)

    def _accept(self) -> None:
        while not self._closed:
            try:
                raw = self.listener.accept()
            except Exception:  # noqa: BLE001 - closed listener
                if self._closed:
                    return
                continue
            threading.Thread(target=self._serve, args=(raw,), name="aos-node-conn", daemon=True).start()

    def _login(self, raw) -> bool:
        """The authkey challenge both ways, within HANDSHAKE_SECONDS (a silent client is dropped)."""
        sock = socket.socket(fileno=os.dup(raw.fileno()))
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", HANDSHAKE_SECONDS, 0))
            try:
                deliver_challenge(raw, self.authkey)
                answer_challenge(raw, self.authkey)
            except Exception:  # noqa: BLE001 - wrong key, garbage or silence: not a client of ours
                return False
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 0))
            return True
        finally:
            sock.close()     # the duplicate only; the connection keeps its own descriptor

    def _serve(self, raw) -> None:
        if not self._login(raw):
            raw.close()
            return
        conn = _Conn(raw)
        with self._conns_lock:
            if self._closed:
                conn.close()
                return
            self._conns.add(conn)
        subs: dict[int, Callable[[], None]] = {}
        try:
            while not conn.closed:
                try:
                    req = raw.recv()
                    rid, method, args, kwargs = req
                except Exception:  # noqa: BLE001 - EOF, the host closed this connection, or garbage
                    return
                if method == "subscribe" and args:
                    sid = rid
                    subs[sid] = self.node.subscribe(args[0], lambda event, sid=sid: conn.put(("event", sid, event)))
                    conn.put(("ok", rid, sid))
                    continue
                if method == "unsubscribe" and args:
                    unsub = subs.pop(args[0], None)
                    if unsub:
                        unsub()
                    conn.put(("ok", rid, None))
                    continue
                pool = self._waits if method == "wait_result" else self._calls
                try:
                    pool.submit(self._answer, conn, rid, method, args, kwargs)
                except RuntimeError:   # the host is shutting down
                    return
        finally:
            for unsub in subs.values():
                unsub()
            conn.close()
            with self._conns_lock:
                self._conns.discard(conn)

    def _answer(self, conn: _Conn, rid, method, args, kwargs) -> None:
        if conn.closed:
            return
        try:
            value = self.local.call(method, *args, **(kwargs if isinstance(kwargs, dict) else {}))
            reply = ("ok", rid, value)
        except ClientError as exc:
            reply = ("err", rid, type(exc).__name__, str(exc))
        except TypeError as exc:   # wrong arguments from a client
            reply = ("err", rid, "ClientError", f"bad call to {method}: {exc}")
        conn.put(reply)

    def close(self) -> None:
        self._closed = True
        try:
            if self.listener is not None:
                self.listener.close()
        except OSError:
            pass
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            conn.close()
        try:
            self.sock.unlink()
        except OSError:
            pass
        self.node.close()     # first: pending waits end as the node closes
        self._calls.shutdown(wait=False, cancel_futures=True)
        self._waits.shutdown(wait=False, cancel_futures=True)
        os.close(self.lock_fd)   # releases the flock: another process may host now


class _Conn:
    """One client connection's outgoing side: a bounded queue drained by its own writer thread."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.closed = False
        self._out: queue.Queue = queue.Queue(maxsize=OUTGOING_LIMIT)
        self._writer = threading.Thread(target=self._write, name="aos-node-writer", daemon=True)
        self._writer.start()

    def put(self, msg) -> None:
        """Queue a reply or event; a client this far behind (it stopped reading) is disconnected."""
        if self.closed:
            return
        try:
            self._out.put_nowait(msg)
        except queue.Full:
            log.warning("a client stopped reading (%d messages queued): disconnecting it", OUTGOING_LIMIT)
            self.close()

    def _write(self) -> None:
        while True:
            msg = self._out.get()
            if msg is None or self.closed:
                return
            try:
                self.raw.send(msg)
            except Exception:  # noqa: BLE001 - the client is gone, or a value cannot be sent
                self.close()
                return

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._out.put_nowait(None)
        except queue.Full:
            pass
        _shutdown(self.raw)
        try:
            self.raw.close()
        except OSError:
            pass


def _shutdown(conn) -> None:
    """Shut a connection's socket both ways: a thread blocked reading or writing it wakes up (closing the
    descriptor alone does not wake it), and the other end sees the connection end."""
    try:
        sock = socket.socket(fileno=os.dup(conn.fileno()))
    except (OSError, ValueError):
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


class RemoteBackend:
    """Talks to the hosting process over the socket."""

    def __init__(self, data_dir: Path) -> None:
        self.sock = data_dir / "node.sock"
        try:
            authkey = (data_dir / "node.authkey").read_bytes()
            self.conn = _Connect(str(self.sock), family="AF_UNIX", authkey=authkey)
        except (OSError, EOFError, AuthenticationError) as exc:
            raise NodeUnavailable(f"cannot reach the node serving {data_dir}: {exc}") from None
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._pending: dict[int, list] = {}
        self._events: dict[int, Callable[[dict], None]] = {}
        self._cv = threading.Condition()
        self.alive = True
        self._event_queue: queue.SimpleQueue = queue.SimpleQueue()
        self._deliverer = threading.Thread(target=self._deliver, name="aos-client-events", daemon=True)
        self._deliverer.start()
        self._reader = threading.Thread(target=self._read, name="aos-client-reader", daemon=True)
        self._reader.start()

    def _deliver(self) -> None:
        """Run subscriber callbacks off the reader thread: a callback may make calls of its own."""
        while True:
            item = self._event_queue.get()
            if item is None:
                return
            cb = self._events.get(item[0])
            if cb is not None:
                try:
                    cb(item[1])
                except Exception:  # noqa: BLE001 - a subscriber's bug must not cut the connection
                    log.exception("subscriber callback failed")

    def _read(self) -> None:
        try:
            while True:
                msg = self.conn.recv()
                if msg[0] == "event":
                    self._event_queue.put((msg[1], msg[2]))
                    continue
                with self._cv:
                    self._pending[msg[1]] = list(msg)
                    self._cv.notify_all()
        except (EOFError, OSError):
            pass
        finally:
            with self._cv:
                self.alive = False
                self._cv.notify_all()

    def _request(self, method: str, *args, _rid: int | None = None, **kwargs):
        rid = _rid if _rid is not None else next(self._ids)
        with self._cv:
            if not self.alive:
                raise NodeUnavailable("the connection to the node was lost")
            self._pending[rid] = None
        try:
            with self._send_lock:
                self.conn.send((rid, method, args, kwargs))
        except (OSError, ValueError) as exc:
            raise NodeUnavailable(f"the connection to the node was lost: {exc}") from None
        with self._cv:
            while self._pending.get(rid) is None:
                if not self.alive:
                    self._pending.pop(rid, None)
                    raise NodeUnavailable("the connection to the node was lost")
                self._cv.wait(1.0)
            reply = self._pending.pop(rid)
        if reply[0] == "ok":
            return reply[2]
        raise BY_NAME.get(reply[2], ClientError)(reply[3])

    def call(self, method: str, *args, **kwargs):
        if method not in METHODS:
            raise ClientError(f"unknown node method {method!r}")
        return self._request(method, *args, **kwargs)

    def subscribe(self, process: str, callback: Callable[[dict], None]) -> Callable[[], None]:
        sid = next(self._ids)
        self._events[sid] = callback   # registered first: events may arrive before the reply
        try:
            self._request("subscribe", process, _rid=sid)
        except ClientError:
            self._events.pop(sid, None)
            raise

        def unsubscribe() -> None:
            self._events.pop(sid, None)
            if self.alive:
                try:
                    self._request("unsubscribe", sid)
                except ClientError:
                    pass
        return unsubscribe

    def close(self) -> None:
        self.alive = False
        self._event_queue.put(None)
        _shutdown(self.conn)   # wakes our reader thread and tells the host we are gone
        try:
            self.conn.close()
        except OSError:
            pass


def try_lock(data_dir: Path) -> int | None:
    """Take the data directory's host lock; returns its fd, or None if another process hosts."""
    fd = os.open(data_dir / "node.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
