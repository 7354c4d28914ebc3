"""`aos serve`: host the node of a data directory and serve it over HTTP (aos_py/node/http/) until Ctrl-C.

The node is hosted exactly as an `aos` session hosts it (the data directory's lock and socket, see
backend.Host), so an `aos` started later on the same data dir joins it. The first lines on stdout are
the environment a client needs (NAME=value, one per line); nothing else goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aos serve", description=(
        "Serve this machine's node over the AO legacy HTTP protocols (MU, CU, SU and gateway on one origin), "
        "for aoconnect, aos and other aos-py shells. Prints the client environment first (MU_URL, CU_URL, "
        "GATEWAY_URL, GRAPHQL_URL, SCHEDULER, AOS_MODULE, AUTHORITY); Ctrl-C stops."))
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=4000, help="port (default 4000; 0 picks a free one)")
    p.add_argument("--data-dir", metavar="DIR", help="node data directory (default: $AOS_PY_HOME or ~/.aos-py)")
    p.add_argument("--wallet", metavar="FILE", help=argparse.SUPPRESS)   # the global flag; the node signs itself
    p.add_argument("--no-services", action="store_true",
                   help="do not start the node's own processes (APM registry, wAR, Llama Herder)")
    return p


def serve_main(argv: list[str]) -> int:
    args = _parser().parse_intermixed_args(argv)
    if not 0 <= args.port <= 65535:
        print(f"aos serve: --port must be 0..65535, not {args.port}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="aos serve: %(message)s")
    from aos_py.client.backend import Host, try_lock
    from aos_py.node.http.server import run_until_signal

    data_dir = Path(args.data_dir or os.environ.get("AOS_PY_HOME") or Path.home() / ".aos-py").expanduser()
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = try_lock(data_dir)
    if fd is None:
        print(f"aos serve: another aos hosts the node of {data_dir}; close it first (aos serve must host the "
              "node; sessions started after it join it)", file=sys.stderr)
        return 1
    try:
        host = Host(data_dir, fd, {"services": not args.no_services})
    except BaseException as exc:
        os.close(fd)
        print(f"aos serve: cannot open the node of {data_dir}: {exc}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(run_until_signal(host.node, args.host, args.port, f"(data: {data_dir})"))
    except KeyboardInterrupt:
        return 0
    finally:
        host.close()
