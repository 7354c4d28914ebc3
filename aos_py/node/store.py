"""The node's one SQLite database: process logs, results, processes, the gateway index.

Durability: WAL journal with synchronous=FULL, so each commit fsyncs the WAL
before it returns; the node commits once per scheduling round (group commit)
and tells nobody about a message before the round that holds it has committed.
NORMAL would survive a SIGKILL too (the WAL is in the OS page cache) but not a
power cut, and with one fsync per round FULL costs little.

Once the node is busy (after its first few dozen commits), checkpoints
(copying the WAL back into the database file, with an fsync of the database)
no longer run inside the rounds' commits: a checkpointer thread with its own
connection runs passive checkpoints twice a second while the node goes on
computing. A commit is durable once its WAL frames are synced, so
this moves work off the commit path without weakening it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

SCHEMA_VERSION = 2   # 2: log.journal (host calls of a message, see runtime/journal.py) and log.sum (row checksum)
CHECKPOINT_EVERY_S = 0.5       # a checkpoint this often while commits come in
CHECKPOINT_THREAD_AFTER = 32   # commits before checkpoints move to their own thread (a busy node)
WAL_LIMIT = 64 << 20           # a WAL past this size is checkpointed whole and truncated (it never grows unbounded)

log = logging.getLogger("aos_py.node.store")

# log.status
PENDING, OK, FAILED = 0, 1, 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY, owner TEXT, target TEXT, kind TEXT, raw BLOB,
    file TEXT, size INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS item_tags (id TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS item_tags_nv ON item_tags (name, value);
CREATE INDEX IF NOT EXISTS item_tags_id ON item_tags (id);
CREATE TABLE IF NOT EXISTS processes (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT, module TEXT NOT NULL, created INTEGER NOT NULL,
    env TEXT NOT NULL, cron TEXT, monitored INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS processes_owner ON processes (owner, name);
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY, pid TEXT NOT NULL, nonce INTEGER NOT NULL, id TEXT NOT NULL,
    ts INTEGER NOT NULL, height INTEGER NOT NULL, chain TEXT NOT NULL,
    msg TEXT NOT NULL, data BLOB, status INTEGER NOT NULL DEFAULT 0, result TEXT, journal TEXT, sum TEXT,
    UNIQUE (pid, nonce));
CREATE INDEX IF NOT EXISTS log_id ON log (id);
CREATE INDEX IF NOT EXISTS log_pending ON log (status) WHERE status = 0;
"""


def row_sum(pid: str, nonce: int, msg: str, data: bytes | None, journal: str | None) -> str:
    """The checksum of a log row: what a replay trusts (a same-size edit passes SQLite's own checks)."""
    h = hashlib.blake2b(digest_size=16)
    for part in (pid.encode(), str(nonce).encode(), msg.encode("utf-8", "surrogatepass"), data or b"",
                 (journal or "").encode("utf-8", "surrogatepass")):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


class StoreError(RuntimeError):
    """The database cannot be used (corrupt, wrong version, locked)."""


class Store:
    """Thread-safe access to the node database (one connection, one lock)."""

    def __init__(self, path: Path, *, check: bool = True, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self.lock = threading.RLock()
        try:
            self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
            self.db.execute(f"PRAGMA synchronous={synchronous}")
            self.db.execute("PRAGMA foreign_keys=OFF")
            if check:
                self._check()
            self.db.executescript(_SCHEMA)
            self._version()
        except sqlite3.DatabaseError as exc:
            raise StoreError(self._explain(exc)) from None
        self._synchronous = synchronous
        self._commits = 0
        self._ckpt_wake = threading.Event()
        self._ckpt_thread: threading.Thread | None = None

    # -- checkpoints ---------------------------------------------------------------

    def _wake_checkpointer(self) -> None:
        """Count a commit (called with the lock held, after COMMIT). A node that has committed
        little keeps SQLite's own checkpoints; once it is busy they move to the checkpointer
        thread, which looks at the count on its own clock (no wake-up per commit)."""
        self._commits += 1
        if self._ckpt_thread is None and self._commits >= CHECKPOINT_THREAD_AFTER:
            try:
                self.db.execute("PRAGMA wal_autocheckpoint=0")
            except sqlite3.Error:
                return
            self._ckpt_thread = threading.Thread(target=self._checkpointer, name="aos-node-checkpoint", daemon=True)
            self._ckpt_thread.start()

    def _checkpointer(self) -> None:
        """Passive checkpoints on a second connection: they never block the node's commits."""
        try:
            db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute("PRAGMA wal_autocheckpoint=0")
            db.execute("PRAGMA busy_timeout=5000")
        except sqlite3.Error as exc:
            self._checkpoint_inline(f"cannot open a checkpoint connection: {exc}")
            return
        try:
            seen = 0
            while not self._ckpt_wake.wait(CHECKPOINT_EVERY_S):   # set only by close()
                if self._commits != seen:
                    seen = self._commits
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    if self._wal_size() > WAL_LIMIT:
                        # passive checkpoints cannot catch up with a node that never pauses: copy the
                        # whole WAL back (commits wait a moment) and cut the file to nothing
                        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            self._checkpoint_inline(f"checkpoint failed: {exc}")
        finally:
            db.close()

    def _wal_size(self) -> int:
        try:
            return os.path.getsize(f"{self.path}-wal")
        except OSError:
            return 0

    def _checkpoint_inline(self, why: str) -> None:
        """Fall back to SQLite's own checkpoints in the commits (slower, never unbounded WAL)."""
        log.warning("node database %s: %s; checkpointing in the commits instead", self.path, why)
        with self.lock:
            try:
                self.db.execute("PRAGMA wal_autocheckpoint=1000")
            except sqlite3.Error:
                pass

    def _explain(self, exc: Exception) -> str:
        """What went wrong, in words that lead to the right fix (a full disk is not a damaged database)."""
        text = str(exc).lower()
        if "full" in text:
            return (f"the disk holding the node database {self.path} is full ({exc}); nothing was lost and "
                    "the last change was not made. Free some space and try again.")
        if "readonly" in text or "read-only" in text or "permission" in text or "access permission" in text:
            return (f"the node database {self.path} or its folder is not writable ({exc}); nothing was changed. "
                    "Check the permissions of the data dir, or choose another with --data-dir.")
        if "locked" in text or "busy" in text:
            return (f"the node database {self.path} is in use by another program ({exc}); nothing was changed. "
                    "Try again in a moment.")
        if "unable to open" in text:
            return (f"the node database {self.path} cannot be opened ({exc}); check that its folder exists and is "
                    "writable. Nothing was changed.")
        return (f"node database {self.path} is damaged or unreadable ({exc}); nothing was changed. "
                "Restore it from a backup, or move it aside to start an empty node.")

    def _check(self) -> None:
        rows = self.db.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            detail = "; ".join(r[0] for r in rows[:3])
            raise sqlite3.DatabaseError(f"integrity check failed: {detail}")

    def _version(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) == 1:    # version 1 had no journal column: add it (old messages replay for real)
            with self.db:
                cols = {r[1] for r in self.db.execute("PRAGMA table_info(log)")}
                if "journal" not in cols:
                    self.db.execute("ALTER TABLE log ADD COLUMN journal TEXT")
                if "sum" not in cols:     # rows written before have no checksum and are not checked
                    self.db.execute("ALTER TABLE log ADD COLUMN sum TEXT")
                self.db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
        elif int(row[0]) != SCHEMA_VERSION:
            raise StoreError(f"node database {self.path} has schema version {row[0]}; this aos-py reads "
                             f"version {SCHEMA_VERSION}")

    def close(self) -> None:
        self._ckpt_wake.set()
        if self._ckpt_thread is not None:
            self._ckpt_thread.join(timeout=30)
        with self.lock:
            self.db.close()   # the last connection to close checkpoints the WAL and removes it

    # -- generic helpers ---------------------------------------------------------

    def query(self, sql: str, args: Iterable = ()) -> list[tuple]:
        with self.lock:
            try:
                return self.db.execute(sql, tuple(args)).fetchall()
            except sqlite3.DatabaseError as exc:
                raise StoreError(self._explain(exc)) from None

    def transaction(self, ops: list[tuple[str, list | tuple]]) -> None:
        """Run (sql, params) ops in one transaction; params that are lists of tuples run executemany."""
        with self.lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    for sql, params in ops:
                        if isinstance(params, list):
                            if params:
                                self.db.executemany(sql, params)
                        else:
                            self.db.execute(sql, params)
                    self.db.execute("COMMIT")
                except BaseException:
                    if self.db.in_transaction:   # SQLite has already rolled back after e.g. a full disk
                        self.db.execute("ROLLBACK")
                    raise
                self._wake_checkpointer()
            except sqlite3.DatabaseError as exc:
                raise StoreError(self._explain(exc)) from None

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else default

    # -- reads used by the roles ------------------------------------------------

    def process_row(self, pid: str) -> dict | None:
        rows = self.query("SELECT id, owner, name, module, created, env, cron, monitored FROM processes WHERE id=?",
                          (pid,))
        if not rows:
            return None
        r = rows[0]
        return {"id": r[0], "owner": r[1], "name": r[2], "module": r[3], "created": r[4],
                "env": json.loads(r[5]), "cron": r[6], "monitored": bool(r[7])}

    def tails(self) -> dict[str, tuple[int, int, str, str]]:
        """Per process: (last nonce, last timestamp, last hash chain, last message id)."""
        out = {}
        for pid, nonce, ts, chain, mid in self.query(
                "SELECT l.pid, l.nonce, l.ts, l.chain, l.id FROM log l JOIN "
                "(SELECT pid, MAX(nonce) AS n FROM log GROUP BY pid) m ON l.pid = m.pid AND l.nonce = m.n"):
            out[pid] = (nonce, ts, chain, mid)
        return out

    def recent_processes(self, limit: int) -> list[str]:
        """The processes with the most recent messages in the log (newest first), at most `limit`."""
        rows = self.query("SELECT pid FROM log ORDER BY seq DESC LIMIT 5000")
        seen: dict[str, None] = {}
        for (pid,) in rows:
            seen.setdefault(pid, None)
            if len(seen) >= limit:
                break
        return list(seen)

    def pending(self) -> list[tuple]:
        """Scheduled but not yet computed messages, in scheduling order."""
        return self.query("SELECT seq, pid, nonce, msg, data FROM log WHERE status=0 ORDER BY seq")

    def replay_rows(self, pid: str, batch: int = 5000) -> Iterator[tuple[str, bytes | None, str | None]]:
        """(msg json, data, journal json) of every message of `pid` that computed without Error, in slot order."""
        for _n, msg, data, journal in self.replay_rows_after(pid, -1, batch):
            yield msg, data, journal

    def replay_rows_after(self, pid: str, after: int,
                          batch: int = 5000) -> Iterator[tuple[int, str, bytes | None, str | None]]:
        """(nonce, msg json, data, journal json) of the successful messages of `pid` after slot `after`.

        Read in keyset-paged batches so a long replay does not hold the lock.
        """
        last = after
        while True:
            rows = self.query("SELECT nonce, msg, data, journal, sum FROM log WHERE pid=? AND status=1 AND nonce>? "
                              "ORDER BY nonce LIMIT ?", (pid, last, batch))
            for nonce, msg, data, journal, stored in rows:
                if stored is not None and stored != row_sum(pid, nonce, msg, data, journal):
                    raise StoreError(f"log row {nonce} of process {pid} does not match its checksum: the node "
                                     f"database {self.path} was changed outside aos-py. Nothing past that row "
                                     "was replayed; restore the database from a backup.")
                yield nonce, msg, data, journal
            if len(rows) < batch:
                return
            last = rows[-1][0]
