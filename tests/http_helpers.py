"""Helpers of the HTTP tests: `aos serve` in a subprocess, the npm install of aoconnect, raw HTTP calls."""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV_NAMES = ("MU_URL", "CU_URL", "GATEWAY_URL", "GRAPHQL_URL", "SCHEDULER", "AOS_MODULE", "AUTHORITY")
AOCONNECT = "@permaweb/aoconnect@0.0.98"


def child_env(**extra: str) -> dict:
    env = dict(os.environ)
    for name in (*ENV_NAMES, "AOS_PY_HOME", "AOS_WALLET"):
        env.pop(name, None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


class Served:
    """`aos serve --port 0` on a data dir; `env` is what it printed first."""

    def __init__(self, data_dir: Path, *, services: bool = False) -> None:
        args = [sys.executable, "-m", "aos_py", "serve", "--port", "0", "--data-dir", str(data_dir)]
        if not services:
            args.append("--no-services")
        self.log = data_dir.parent / f"{data_dir.name}-serve.log"
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(self.log, "wb"),  # noqa: SIM115
                                     env=child_env(), cwd=str(ROOT))
        self.env: dict[str, str] = {}
        self.lines: list[str] = []
        deadline = time.monotonic() + 60
        buf = b""
        while len(self.lines) < len(ENV_NAMES):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise AssertionError(f"aos serve did not print its environment: {self.lines} "
                                     f"{self.log.read_text(errors='replace')[-2000:]}")
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self.lines.append(line.decode())
        for line in self.lines:
            name, _, value = line.partition("=")
            self.env[name] = value
        self.url = self.env["MU_URL"]

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 30) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_json(method: str, url: str, body: bytes | None = None, **kw) -> tuple[int, object]:
    status, data = http(method, url, body, **kw)
    return status, json.loads(data)


def npm_cache_dir() -> Path:
    return Path(os.environ.get("AOS_PY_NPM_CACHE") or Path.home() / ".cache" / "aos-py" / "npm")


def aoconnect_root() -> Path:
    """A folder whose node_modules holds aoconnect 0.0.98: installed with npm once, then reused.
    Skips (with the reason printed in the test summary) when node or npm is missing or npm cannot install."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip(f"aoconnect end-to-end test skipped: {'node' if not node else 'npm'} is not installed")
    root = npm_cache_dir()
    pkg = root / "node_modules" / "@permaweb" / "aoconnect" / "package.json"

    def installed() -> bool:
        try:
            return json.loads(pkg.read_text())["version"] == "0.0.98"
        except (OSError, ValueError, KeyError):
            return False
    if installed():
        return root
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():
            return root
        if not (root / "package.json").exists():
            (root / "package.json").write_text('{"name": "aos-py-e2e", "private": true}\n')
        try:
            done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error", AOCONNECT],
                                  cwd=root, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            pytest.skip(f"aoconnect end-to-end test skipped: npm install {AOCONNECT} took over 300 s (no network?)")
        if done.returncode != 0 or not installed():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            pytest.skip(f"aoconnect end-to-end test skipped: npm could not install {AOCONNECT} "
                        f"(no network?): {' | '.join(tail)}")
    return root
