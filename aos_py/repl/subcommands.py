"""`aos model`, `aos apm`, `aos faucet`, `aos herd`: the subcommands beside the shell.

Each takes the global --data-dir / --wallet flags before or after its own words, so
`aos --data-dir D model list` and `aos model list --data-dir D` are the same command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from aos_py.repl import render

SUBCOMMANDS = ("model", "apm", "faucet", "herd", "serve", "test")
# flags of the shell that take a value (so the word after them is not a subcommand)
_VALUED = {"--wallet", "--data-dir", "--load", "--run", "--watch", "--cron", "--tag-name", "--tag-value",
           "--data", "--module"}


def find_subcommand(argv: list[str]) -> tuple[str | None, list[str]]:
    """The subcommand named by the first positional word, and argv without it; (None, argv) for the shell."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return None, argv
        if word.startswith("-"):
            i += 2 if word in _VALUED else 1
            continue
        if word in SUBCOMMANDS:
            return word, argv[:i] + argv[i + 1:]
        return None, argv
    return None, argv


def run_subcommand(name: str, argv: list[str]) -> int:
    return {"model": model_command, "apm": apm_command, "faucet": faucet_command, "herd": herd_command,
            "serve": serve_command, "test": test_command}[name](argv)


def test_command(argv: list[str]) -> int:
    """`aos test [PATHS...]`: Lua spec files on in-memory AO nodes (aos_py/testing/runner.py)."""
    from aos_py.testing.runner import test_command as run

    return run(argv)


def serve_command(argv: list[str]) -> int:
    """`aos serve`: the node over HTTP (MU, CU, SU, gateway); see aos_py/node/http/."""
    from aos_py.client.serve import serve_main

    return serve_main(argv)


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--data-dir", metavar="DIR", help="node data directory (default: $AOS_PY_HOME or ~/.aos-py)")
    p.add_argument("--wallet", metavar="FILE", help="JWK wallet file (default: $AOS_WALLET or ~/.aos.json)")
    return p


def _data_dir(arg: str | None) -> Path:
    return Path(arg or os.environ.get("AOS_PY_HOME") or Path.home() / ".aos-py").expanduser()


def _error(text: str) -> int:
    print(render.colour(f"ERROR: {text}", render.RED), file=sys.stderr)
    return 1


def _open(args: argparse.Namespace):
    from aos_py.client import Client
    from aos_py.repl.main import show_engine_note

    client = Client.open(_data_dir(args.data_dir))
    show_engine_note(client)
    return client


# -- aos model ----------------------------------------------------------------------------------------

def model_command(argv: list[str]) -> int:
    """`aos model add FILE.gguf` (checked, then stored with descriptive tags) / `aos model list`."""
    p = _parser("aos model", "manage GGUF models in the node's data store")
    p.add_argument("cmd", choices=["add", "list"],
                   help="add FILE.gguf: import a model and print its data id (Lua loads it as /data/<id>); list: show models")
    p.add_argument("file", nargs="?", help="the .gguf file (for add)")
    args = p.parse_intermixed_args(argv)
    if args.cmd == "add" and not args.file:
        p.error("add needs a FILE.gguf")
    from aos_py.inference.models import (
        ModelImportError,
        describe_file,
        format_models,
        import_model,
        list_models,
    )

    if args.cmd == "add":
        path = Path(args.file).expanduser()
        if not path.is_file():
            return _error(f"model file not found: {path}")
        try:
            describe_file(path)  # refuse a broken file before touching the store
        except ModelImportError as exc:
            return _error(str(exc))
    client = _open(args)
    try:
        if args.cmd == "add":
            from aos_py.repl.spinner import Spinner

            def store(file: Path, tags: list[tuple[str, str]]) -> str:
                tags = [t for t in tags if t[0] != "Content-Type"]
                tags += [("Content-Type", "application/gguf"), ("Name", file.name)]
                return client.add_data(file, tags=tags)

            with Spinner(f"[Importing {path.name} into the data store...]",
                         status=import_progress(path, _data_dir(args.data_dir) / "blobs")):
                info = import_model(path, store)
            print(info.id)
            print(render.colour(info.line(), render.GRAY), file=sys.stderr)
            return 0
        print(format_models(list_models(lambda name, value: client.list_data(name, value))))
        return 0
    finally:
        client.close()


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def import_progress(path: Path, blob_dir: Path):
    """Spinner text for `aos model add`: bytes copied into the node's store so far (the node writes the copy
    to blobs/.incoming-*, whichever aos hosts it)."""
    import time

    total = max(1, path.stat().st_size)
    started = time.time() - 1

    def status() -> str:
        done = 0
        for f in blob_dir.glob(".incoming-*"):
            try:
                st = f.stat()
            except OSError:
                continue
            if st.st_mtime >= started:
                done = max(done, st.st_size)
        if not done:
            return f"[Importing {path.name} ({_size(total)}) into the data store...]"
        pct = min(100, done * 100 // total)
        saving = ", saving" if pct == 100 else ""
        return f"[Importing {path.name}: {_size(min(done, total))} of {_size(total)} ({pct}%{saving})...]"
    return status


# -- aos faucet ---------------------------------------------------------------------------------------

def _user_process(client, wallet, target: str) -> str:
    from aos_py.repl.main import PROCESS_ID_RE

    if PROCESS_ID_RE.match(target):
        return target
    rows = client.find_processes(wallet.address, target)
    if not rows:
        raise LookupError(f"your wallet has no process named '{target}' (start it with `aos {target}` first, "
                          "or pass --process PROCESS-ID)")
    return rows[0]["id"]


def faucet_command(argv: list[str]) -> int:
    """`aos faucet [AMOUNT] [--process NAME|ID]`: wAR from the local token to one of your processes."""
    p = _parser("aos faucet", "credit one of your processes with wAR from the local node's token")
    p.add_argument("amount", nargs="?", default="1", help="wAR to send (default 1; up to 12 decimals)")
    p.add_argument("--process", default="default", metavar="NAME|ID", help="the receiving process (default: default)")
    args = p.parse_intermixed_args(argv)
    from aos_py.client import ClientError, load_wallet
    from aos_py.node.services import war_units

    try:
        war_units(args.amount)
    except ValueError as exc:
        return _error(str(exc))
    client = _open(args)
    try:
        wallet = load_wallet(args.wallet)
        pid = _user_process(client, wallet, args.process)
        done = client.faucet(pid, args.amount)
        balance = _war_balance(client, done["token"], pid)
        print(f"💧 {args.amount} wAR sent to {pid}" + (f" (balance: {balance} wAR)" if balance else ""))
        return 0
    except (ClientError, LookupError) as exc:
        return _error(str(exc))
    finally:
        client.close()


def _war_balance(client, token: str, account: str) -> str | None:
    """A balance in wAR (exact decimal text), read by a dry-run of the token's Balance."""
    from decimal import Decimal

    res = client.dryrun(token, tags=[("Action", "Balance"), ("Recipient", account)])
    for m in res.get("Messages", []):
        data = str(m.get("Data", "")).strip()
        if data.isdigit():
            text = format(Decimal(data) / Decimal(10) ** 12, "f")
            return text.rstrip("0").rstrip(".") if "." in text else text
    return None


# -- aos herd -----------------------------------------------------------------------------------------

def herd_command(argv: list[str]) -> int:
    """`aos herd status` / `aos herd --workers N` / `aos herd use MODEL-ID`."""
    p = _parser("aos herd", "the local Llama Herder: its workers, model, fees and queue")
    p.add_argument("cmd", nargs="?", choices=["status", "use"], default="status",
                   help="status (default): show the herd; use MODEL-ID: serve a model from `aos model add`")
    p.add_argument("model", nargs="?", help="the model id (for use)")
    p.add_argument("--workers", type=int, metavar="N", help="grow or shrink the herd to N workers")
    args = p.parse_intermixed_args(argv)
    if args.cmd == "use" and not args.model:
        p.error("use needs a MODEL-ID (see `aos model list`)")
    from aos_py.client import ClientError

    client = _open(args)
    try:
        if args.workers is not None:
            workers = client.herd_workers(args.workers)
            print(f"The herd has {len(workers)} worker{'s' if len(workers) != 1 else ''}.")
        if args.cmd == "use":
            chosen = client.herd_use(args.model)
            print(f"The herd now serves {chosen['name']} ({chosen['model']}).")
        print(format_herd(client.herd_status()))
        return 0
    except ClientError as exc:
        return _error(str(exc))
    finally:
        client.close()


def format_herd(status: dict) -> str:
    """The herd status as a box: model, engine, fees, queue and one line per worker."""
    workers = status.get("workers") or []
    queue = status.get("queue") or []
    lines = [
        f"herder   {status.get('herder')}",
        f"model    {status.get('modelName') or '?'} ({status.get('model')})",
        f"engine   {status.get('engine', 'wasm')}",
        f"fees     base {status.get('baseFee')}, per token {status.get('tokenFee')}, "
        f"last multiplier {status.get('lastMultiplier')}",
        f"queue    {len(queue) if isinstance(queue, list) else queue} waiting, "
        f"{status.get('jobsDone', 0)} jobs done",
        f"workers  {len(workers)}",
    ]
    for w in workers:
        lines.append(f"  {w.get('id')}  {str(w.get('state')).ljust(5)}  jobs {w.get('jobs', 0)}")
    return render.box("Llama Herder", lines)


# -- aos apm ------------------------------------------------------------------------------------------

def apm_command(argv: list[str]) -> int:
    """`aos apm publish DIR` (with your wallet) / `aos apm list` (what the local registry holds)."""
    p = _parser("aos apm", "the local APM package registry")
    p.add_argument("cmd", choices=["publish", "list"], help="publish DIR: publish a package folder; list: show packages")
    p.add_argument("dir", nargs="?", help="the package folder holding manifest.json (for publish)")
    args = p.parse_intermixed_args(argv)
    if args.cmd == "publish" and not args.dir:
        p.error("publish needs a package folder (with manifest.json)")
    from aos_py.client import ClientError, load_wallet
    from aos_py.node.packages import PackageError, read_package
    from aos_py.node.services import reply_fields

    pkg = None
    if args.cmd == "publish":
        try:
            pkg = read_package(args.dir)
        except PackageError as exc:
            return _error(str(exc))
    client = _open(args)
    try:
        registry = client.services().get("apm-registry")
        if registry is None:
            return _error("this node has no APM registry")
        if pkg is not None:
            wallet = load_wallet(args.wallet)
            return _publish(client, wallet, registry, pkg)
        res = client.dryrun(registry, tags=[("Action", "APM.List")])
        reply = reply_fields(res)
        if reply.get("Result") == "error":
            return _error(str(reply.get("Data")))
        rows = json.loads(reply.get("Data") or "[]")
        print(format_packages(rows))
        return 0
    except ClientError as exc:
        return _error(str(exc))
    finally:
        client.close()


def _publish(client, wallet, registry: str, pkg) -> int:
    from aos_py.node.services import reply_fields

    if pkg.vendor != "@apm":
        mid = client.send(wallet, registry, data=pkg.vendor, tags=[("Action", "APM.RegisterVendor")])
        answer = reply_fields(client.wait_result(registry, mid))
        if answer.get("Result") == "success":
            print(str(answer.get("Data")))
        elif "already" not in str(answer.get("Data")):
            return _error(str(answer.get("Data")))
    mid = client.send(wallet, registry, data=pkg.publish_data(), tags=pkg.publish_tags())
    answer = reply_fields(client.wait_result(registry, mid))
    if answer.get("Result") != "success":
        return _error(str(answer.get("Data")))
    print(str(answer.get("Data")))
    return 0


def format_packages(rows: list[dict]) -> str:
    if not rows:
        return render.box("Packages", ["The registry holds no packages."])
    names = [f"{r.get('Vendor')}/{r.get('Name')}" for r in rows]
    width = max(map(len, names))
    return render.box("Packages", [
        f"{render.GREEN}{n.ljust(width)}{render.RESET}  {str(r.get('Version')).ljust(8)}  "
        f"{render.GRAY}{r.get('TotalInstalls', 0)} installs{render.RESET}  {r.get('Description') or ''}"
        for n, r in zip(names, rows, strict=True)])
