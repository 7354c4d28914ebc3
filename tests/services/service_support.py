"""What the service tests share: the test wallets, polling for a condition, reading a message's tags."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from aos_py.client import load_wallet

VEC = Path(__file__).resolve().parent.parent / "vectors"
ALICE = load_wallet(VEC / "wallet-a.json", create=False)
BOB = load_wallet(VEC / "wallet-b.json", create=False)


def wait_for(fn: Callable[[], object], timeout: float = 10.0, interval: float = 0.02,
             what: str | None = None) -> object:
    """Poll fn() until it returns something truthy and return that; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            name = what or getattr(fn, "__name__", "condition")
            raise AssertionError(f"timed out waiting for {name}; last value {value!r}")
        time.sleep(interval)


def tags_of(message: dict) -> dict[str, str]:
    """A message's tags as a name -> value map."""
    return {t["name"]: t["value"] for t in message.get("Tags", [])}
