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
import threading
from collections.abc import Callable
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client as _Connect
from multiprocessing.connection import Listener
from pathlib import Path

from aos_py.client.errors import BY_NAME, ClientError, NodeUnavailable, translate

log = logging.getLogger("aos_py.client")

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
    """Owns the data directory's lock, the Node, and the socket server."""

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
        authkey = key_path.read_bytes()
        if self.sock.exists() or self.sock.is_symlink():
            self.sock.unlink()
        self.local = LocalBackend(self.node)
        self._closed = False
        self._conns: list = []
        try:
            self.listener = Listener(str(self.sock), family="AF_UNIX", authkey=authkey)
        except OSError as exc:   # e.g. a data dir path too long for a Unix socket: run unshared
            log.warning("node not shared with other processes (cannot listen on %s: %s)", self.sock, exc)
            self.listener = None
            return
        os.chmod(self.sock, 0o600)
        self._thread = threading.Thread(target=self._accept, name="aos-node-socket", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn = self.listener.accept()
            except Exception:  # noqa: BLE001 - closed listener or a failed handshake
                if self._closed:
                    return
                continue
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), name="aos-node-conn", daemon=True).start()

    def _serve(self, conn) -> None:
        send_lock = threading.Lock()
        subs: dict[int, Callable[[], None]] = {}

        def send(msg) -> None:
            with send_lock:
                conn.send(msg)

        try:
            while True:
                try:
                    req = conn.recv()
                except Exception:  # noqa: BLE001 - EOF, or the host closed this connection
                    return
                rid, method, args, kwargs = req
                if method == "subscribe":
                    sid = rid

                    def callback(event, sid=sid):
                        try:
                            send(("event", sid, event))
                        except Exception:  # noqa: BLE001 - the client is gone
                            pass
                    subs[sid] = self.node.subscribe(args[0], callback)
                    send(("ok", rid, sid))
                    continue
                if method == "unsubscribe":
                    unsub = subs.pop(args[0], None)
                    if unsub:
                        unsub()
                    send(("ok", rid, None))
                    continue
                threading.Thread(target=self._answer, args=(send, rid, method, args, kwargs), daemon=True).start()
        finally:
            for unsub in subs.values():
                unsub()
            try:
                conn.close()
            except OSError:
                pass

    def _answer(self, send, rid, method, args, kwargs) -> None:
        try:
            value = self.local.call(method, *args, **kwargs)
            reply = ("ok", rid, value)
        except ClientError as exc:
            reply = ("err", rid, type(exc).__name__, str(exc))
        try:
            send(reply)
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        self._closed = True
        try:
            if self.listener is not None:
                self.listener.close()
        except OSError:
            pass
        for conn in self._conns:
            try:
                conn.close()
            except OSError:
                pass
        try:
            self.sock.unlink()
        except OSError:
            pass
        self.node.close()
        os.close(self.lock_fd)   # releases the flock: another process may host now


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
