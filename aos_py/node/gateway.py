"""The gateway: content-addressed data (modules, models, files, data items) with tag lookup.

Data items are stored under their item id with their raw bytes in SQLite.
Files (models, code) are addressed by base64url(sha256(content)) and kept as
files under <data dir>/blobs/, so a multi-GB GGUF never enters the database.
`resolve(id)` gives the host path behind `/data/<id>` for the runtime.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from aos_py.node.ans104 import DataItem, b64url
from aos_py.node.store import Store

CHUNK = 1 << 20


class GatewayError(ValueError):
    """Data that cannot be added or found."""


class Gateway:
    def __init__(self, store: Store, blob_dir: Path, fallback=None) -> None:
        self.store = store
        self.fallback = fallback   # finds items kept elsewhere (node-pushed messages live in the log)
        self.blob_dir = Path(blob_dir)
        self.blob_dir.mkdir(parents=True, exist_ok=True)

    # -- writes ----------------------------------------------------------------

    def item_ops(self, item: DataItem, kind: str, index_tags: bool) -> list[tuple[str, tuple]]:
        """SQL ops that store a data item (to run inside the caller's transaction)."""
        now = int(time.time() * 1000)
        ops: list[tuple[str, tuple]] = [(
            "INSERT OR IGNORE INTO items (id, owner, target, kind, raw, size, created) VALUES (?,?,?,?,?,?,?)",
            (item.id, item.owner_address, item.target_id, kind, item.raw, len(item.data), now))]
        if index_tags:
            ops.append(("DELETE FROM item_tags WHERE id=?", (item.id,)))
            ops += [("INSERT INTO item_tags VALUES (?,?,?,?)", (item.id, i, n, v)) for i, (n, v) in enumerate(item.tags)]
        return ops

    def add_item(self, item: DataItem, kind: str = "item", index_tags: bool = True) -> str:
        self.store.transaction(self.item_ops(item, kind, index_tags))
        return item.id

    def add_data(self, source: str | Path | bytes, tags: list[tuple[str, str]] = ()) -> str:
        """Store a file or bytes; returns its content id (the same content always gets the same id)."""
        tags = [(str(n), str(v)) for n, v in tags]
        for n, _v in tags:
            if not n:
                raise GatewayError("tag names must not be empty")
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self.blob_dir, prefix=".incoming-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(source, (bytes, bytearray, memoryview)):
                    digest.update(source)
                    out.write(source)
                    size = len(source)
                else:
                    path = Path(source).expanduser()
                    if not path.is_file():
                        raise GatewayError(f"no such file: {path}")
                    with path.open("rb") as src:
                        while chunk := src.read(CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                            size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            data_id = b64url(digest.digest())
            final = self.blob_dir / data_id
            if final.exists():
                os.unlink(tmp)
            else:
                os.replace(tmp, final)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        now = int(time.time() * 1000)
        ops: list[tuple[str, tuple]] = [
            ("INSERT OR IGNORE INTO items (id, kind, file, size, created) VALUES (?,?,?,?,?)",
             (data_id, "file", data_id, size, now))]
        if tags:
            ops.append(("DELETE FROM item_tags WHERE id=?", (data_id,)))
            ops += [("INSERT INTO item_tags VALUES (?,?,?,?)", (data_id, i, n, v)) for i, (n, v) in enumerate(tags)]
        self.store.transaction(ops)
        return data_id

    # -- reads -----------------------------------------------------------------

    def raw(self, item_id: str) -> bytes | None:
        rows = self.store.query("SELECT raw FROM items WHERE id=?", (item_id,))
        if rows and rows[0][0] is not None:
            return rows[0][0]
        return self.fallback(item_id) if self.fallback else None

    def tags(self, item_id: str) -> list[tuple[str, str]]:
        return [(n, v) for n, v in self.store.query(
            "SELECT name, value FROM item_tags WHERE id=? ORDER BY idx", (item_id,))]

    def find(self, tags: list[tuple[str, str]] = (), kind: str | None = None, limit: int = 1000) -> list[dict]:
        """Items carrying every (name, value) in `tags` (value None = any value), newest first."""
        sql = "SELECT id, owner, kind, size, created FROM items i WHERE 1=1"
        args: list = []
        if kind:
            sql += " AND kind=?"
            args.append(kind)
        for name, value in tags:
            if value is None:
                sql += " AND EXISTS (SELECT 1 FROM item_tags t WHERE t.id=i.id AND t.name=?)"
                args.append(name)
            else:
                sql += " AND EXISTS (SELECT 1 FROM item_tags t WHERE t.id=i.id AND t.name=? AND t.value=?)"
                args += [name, value]
        sql += " ORDER BY created DESC, rowid DESC LIMIT ?"
        args.append(limit)
        out = []
        for item_id, owner, k, size, created in self.store.query(sql, args):
            out.append({"id": item_id, "owner": owner, "kind": k, "size": size, "created": created,
                        "tags": self.tags(item_id)})
        return out

    def resolve(self, data_id: str) -> Path | None:
        """Host path of `/data/<id>`: a stored file, or the data of a stored item (written out once)."""
        if not data_id or "/" in data_id or data_id.startswith("."):
            return None
        path = self.blob_dir / data_id
        if path.is_file():
            return path
        raw = self.raw(data_id)
        if raw is None:
            return None
        from aos_py.node.ans104 import parse

        data = parse(raw).data
        fd, tmp = tempfile.mkstemp(dir=self.blob_dir, prefix=".incoming-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
        return path

    def copy_out(self, data_id: str, dest: Path) -> None:
        src = self.resolve(data_id)
        if src is None:
            raise GatewayError(f"no data with id {data_id}")
        shutil.copyfile(src, dest)
