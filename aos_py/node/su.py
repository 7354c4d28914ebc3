"""The scheduler unit: a gap-free, append-only slot sequence per process.

Each message a process receives gets Nonce (slot), Timestamp (ms, never
decreasing), Block-Height (a local height), Epoch 0 and a Hash-Chain linking it
to the slot before. The process itself takes slot 0 with chain
base64url(sha256(pid)); slot n links base64url(sha256(id(n-1) || chain(n-1))).
The SU here signs no separate assignment items, so the chain is over the
message ids (the reference SU chains its assignment ids the same way).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from aos_py.node.ans104 import b64url, b64url_decode

# local block height: one block every two minutes since this epoch (ms)
HEIGHT_EPOCH_MS = 1_600_000_000_000
BLOCK_MS = 120_000
HEIGHT_BASE = 1_000_000


@dataclass(slots=True)
class Slot:
    nonce: int
    timestamp: int
    height: int
    chain: str
    epoch: int = 0


def first_chain(pid: str) -> str:
    return b64url(hashlib.sha256(b64url_decode(pid)).digest())


def next_chain(prev_id: str, prev_chain: str) -> str:
    return b64url(hashlib.sha256(b64url_decode(prev_id) + b64url_decode(prev_chain)).digest())


def local_height(now_ms: int) -> int:
    return HEIGHT_BASE + max(0, now_ms - HEIGHT_EPOCH_MS) // BLOCK_MS


class Scheduler:
    """In-memory tails of every process's sequence; the store holds the sequence itself."""

    def __init__(self, tails: dict[str, tuple[int, int, str, str]] | None = None) -> None:
        # pid -> (last nonce, last timestamp, last chain, last message id, last height)
        self._tails: dict[str, list] = {}
        for pid, (nonce, ts, chain, mid) in (tails or {}).items():
            self._tails[pid] = [nonce, ts, chain, mid, local_height(ts), b64url_decode(chain)]

    def knows(self, pid: str) -> bool:
        return pid in self._tails

    def assign(self, pid: str, message_id: str) -> Slot:
        """Give `message_id` the next slot of `pid` (slot 0 when message_id is the process itself)."""
        now = int(time.time() * 1000)
        tail = self._tails.get(pid)
        if tail is None:
            if message_id != pid:
                raise KeyError(f"process {pid} has no slot 0 yet")
            slot = Slot(0, now, local_height(now), first_chain(pid))
        else:
            ts = max(now, tail[1])
            raw_chain = hashlib.sha256(b64url_decode(tail[3]) + tail[5]).digest()
            slot = Slot(tail[0] + 1, ts, max(local_height(ts), tail[4]), b64url(raw_chain))
            self._tails[pid] = [slot.nonce, ts, slot.chain, message_id, slot.height, raw_chain]
            return slot
        self._tails[pid] = [slot.nonce, slot.timestamp, slot.chain, message_id, slot.height,
                            b64url_decode(slot.chain)]
        return slot

    def latest(self, pid: str) -> tuple[int, int, int] | None:
        """(nonce, timestamp, height) of the last slot, for dry-runs."""
        tail = self._tails.get(pid)
        return None if tail is None else (tail[0], tail[1], tail[4])


def verify_chain(pid: str, rows: list[tuple[int, str, str]]) -> None:
    """Check (nonce, id, chain) rows of one process form an unbroken sequence from slot 0."""
    prev_id = prev_chain = None
    for expected, (nonce, mid, chain) in enumerate(rows):
        if nonce != expected:
            raise ValueError(f"process {pid}: slot {expected} is missing (found {nonce})")
        want = first_chain(pid) if nonce == 0 else next_chain(prev_id, prev_chain)
        if chain != want:
            raise ValueError(f"process {pid}: hash chain broken at slot {nonce}")
        prev_id, prev_chain = mid, chain
