"""Running the HTTP application over a node: bind, publish the node's Scheduler-Location, serve until told.

`run_until_signal` is what `aos serve` runs (aos_py/client/serve.py hosts the node and calls it);
`Server` runs the same thing on a thread (tests, benchmarks).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

ENV_NAMES = ("MU_URL", "CU_URL", "GATEWAY_URL", "GRAPHQL_URL", "SCHEDULER", "AOS_MODULE", "AUTHORITY")


def client_env(base_url: str, node) -> dict[str, str]:
    """What a client needs to use the node served at `base_url` (the names aos reads)."""
    from aos_py.node import modules

    return {"MU_URL": base_url, "CU_URL": base_url, "GATEWAY_URL": base_url, "GRAPHQL_URL": base_url + "/graphql",
            "SCHEDULER": node.address, "AOS_MODULE": modules.DEFAULT_MODULE_ID, "AUTHORITY": node.address}


class Server:
    """The HTTP server over a node, on its own event loop thread (used by tests and the benchmark)."""

    def __init__(self, node, host: str = "127.0.0.1", port: int = 0) -> None:
        import threading

        self.node, self.host, self.port = node, host, port
        self.url = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="aos-http-server", daemon=True)

    def start(self) -> Server:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner, self.url = await start_site(self.node, self.host, self.port)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        self._thread.join(30)


async def start_site(node, host: str, port: int):
    """Bind and start serving `node`; returns (runner, base URL). Publishes the node's Scheduler-Location."""
    from aiohttp import web

    from aos_py.node.http.app import MAX_LINE, build_app, scheduler_location

    app = build_app(node)
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           max_line_size=MAX_LINE, max_field_size=MAX_LINE)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1]
    url_host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in url_host:
        url_host = f"[{url_host}]"
    url = f"http://{url_host}:{bound}"
    loc = scheduler_location(node, url)
    await asyncio.get_running_loop().run_in_executor(None, node.gateway.add_item, loc, "scheduler-location")
    return runner, url


def _release_stdout() -> None:
    """Nothing else ever goes to stdout: when it is a pipe or file, let go of it (a reader such as
    `head -7` may close its end, and nothing written later can fail there)."""
    try:
        if os.isatty(1):
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


async def run_until_signal(node, host: str, port: int, where: str = "") -> int:
    """Serve `node` until SIGINT or SIGTERM; prints the client environment first (stdout), notes on stderr."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        runner, url = await start_site(node, host, port)
    except OSError as exc:
        print(f"aos serve: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        env = client_env(url, node)
        try:
            sys.stdout.write("".join(f"{name}={env[name]}\n" for name in ENV_NAMES))
            sys.stdout.flush()
        except BrokenPipeError:   # the reader took what it needed (e.g. `| head -7`)
            pass
        _release_stdout()
        print(f"aos serve: node {node.address} at {url} {where}; Ctrl-C stops", file=sys.stderr,
              flush=True)
        await stop.wait()
        print("aos serve: stopping", file=sys.stderr, flush=True)
    finally:
        await runner.cleanup()
    return 0
