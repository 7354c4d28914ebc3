"""The node's own processes: the APM registry, the wAR token, the Llama Herder and its workers.

They are ordinary aos processes owned by the node's key, spawned on the first boot of a data dir
with ordinary signed messages, so they persist, replay and show in the log like any process. Their
code is the Lua under lua/services/, loaded by an Eval of `ServiceConfig = {...}` plus the source;
when aos-py ships changed code the Eval is sent again (the Lua keeps its state across reloads), and
packages/ newer than what the registry holds are published. Nothing here ever deletes state.

Their ids live in the store's meta table (key "services") and reach every process on the node as
env tags (APM-Registry, Wrapped-AR, Llama-Herder), as the Authority tag does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from aos_py.node import ans104
from aos_py.node.errors import NodeError, Rejected
from aos_py.resources import service_source

if TYPE_CHECKING:
    from aos_py.node.node import Node

log = logging.getLogger("aos_py.node.services")

META_KEY = "services"
DEFAULT_WORKERS = 2
MAX_WORKERS = 32
WAR_DENOMINATION = 12
HERDER_CRON = "1-minute"     # timeouts of busy workers are checked at least this often
# env tag name -> key in the services record
ENV_TAGS = (("APM-Registry", "apm-registry"), ("Wrapped-AR", "war"), ("Llama-Herder", "herder"))


def reply_fields(result: dict) -> dict:
    """The first outbox message of a result (a service's answer) as {tag: value, "Data": data}."""
    for m in result.get("Messages", []):
        out = {t["name"]: t["value"] for t in m.get("Tags", [])}
        out["Data"] = m.get("Data", "")
        return out
    return {"Result": "error", "Data": result.get("Error") or "the service did not answer"}


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split("."))
    except ValueError:
        return (0,)


class ServiceError(NodeError):
    """A node service could not be spawned, loaded or asked (the message says which and why)."""


def lua_literal(value: object) -> str:
    """A Python value (str, int, float, bool, None, list, dict) as a Lua expression."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)   # JSON string escapes are valid Lua escapes (\uXXXX aside: ASCII-only output)
    if isinstance(value, list | tuple):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(str(k))}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write a {type(value).__name__} as Lua")


def war_units(amount: str | int | float | Decimal) -> str:
    """'1.5' wAR -> '1500000000000' (integer units, Denomination 12); a clear error for bad amounts."""
    try:
        d = Decimal(str(amount).strip())
    except InvalidOperation:
        raise Rejected(f"invalid wAR amount {amount!r}: use a number such as 1 or 0.25") from None
    units = d * (10 ** WAR_DENOMINATION)
    if not d.is_finite() or units <= 0 or units != units.to_integral_value():
        raise Rejected(f"invalid wAR amount {amount!r}: must be positive with at most {WAR_DENOMINATION} decimals")
    return str(int(units))


class Services:
    """Spawns, upgrades and talks to the node's own processes."""

    def __init__(self, node: Node) -> None:
        self.node = node
        raw = node.store.get_meta(META_KEY)
        self.record: dict = json.loads(raw) if raw else {}

    # -- the record ------------------------------------------------------------------------------

    def _save(self) -> None:
        self.node.store.transaction([("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                      (META_KEY, json.dumps(self.record, sort_keys=True)))])

    def ids(self) -> dict:
        """{"apm-registry", "war", "herder": pid, "workers": [pids], "model": data id} (what exists)."""
        return {k: self.record[k] for k in ("apm-registry", "war", "herder", "workers", "model") if k in self.record}

    def env_tags(self) -> list[dict]:
        return [{"name": name, "value": self.record[key]} for name, key in ENV_TAGS if key in self.record]

    # -- items signed by the node ---------------------------------------------------------------

    def _spawn(self, name: str, extra: list[tuple[str, str]] = ()) -> str:
        node = self.node
        tags = [("App-Name", "aos"), ("Name", name), *extra, ("Authority", node.address),
                ("Content-Type", "text/plain"), ("SDK", "aos-py"), ("Data-Protocol", "ao"), ("Variant", "ao.TN.1"),
                ("Type", "Process"), ("Module", node.default_module()), ("Scheduler", node.address),
                ("Timestamp", str(int(time.time() * 1000)))]
        pid = node.submit(ans104.build(node.key, tags=tags, data=" ").raw)
        self._check(node.wait_result(pid, pid, 60.0), f"spawn of {name}")
        return pid

    def send(self, target: str, tags: list[tuple[str, str]], data: str = " ", wait: bool = True) -> dict | str:
        """A message signed by the node key; its result when `wait`, else its id."""
        import secrets

        node = self.node
        tags = [*tags, ("Data-Protocol", "ao"), ("Variant", "ao.TN.1"), ("Type", "Message"), ("SDK", "aos-py")]
        mid = node.submit(ans104.build(node.key, target=target, anchor=secrets.token_urlsafe(24), tags=tags,
                                       data=data or " ").raw)
        return node.wait_result(target, mid, 120.0) if wait else mid

    @staticmethod
    def _check(result: dict, what: str) -> dict:
        if result.get("Error"):
            raise ServiceError(f"{what} failed: {result['Error']}")
        return result

    def _load_code(self, key: str, pid: str, source_name: str, config: dict) -> None:
        source = service_source(source_name)
        code = f"ServiceConfig = {lua_literal(config)}\n{source}"
        digest = hashlib.sha256(code.encode("utf-8")).hexdigest()
        if self.record.setdefault("code", {}).get(key) == digest:
            return
        self._check(self.send(pid, [("Action", "Eval")], code), f"loading {source_name}.lua into {pid}")
        self.record["code"][key] = digest
        self._save()

    # -- boot --------------------------------------------------------------------------------------

    def ensure(self) -> None:
        """Spawn what is missing, reload changed code, publish newer packages. Safe to run on every start."""
        r = self.record
        if "apm-registry" not in r:
            r["apm-registry"] = self._spawn("apm-registry")
            self._save()
        if "war" not in r:
            r["war"] = self._spawn("wAR")
            self._save()
        if "model" not in r:
            r["model"] = self._demo_model()
            self._save()
        if "herder" not in r:
            r["herder"] = self._spawn("llama-herder", [("Cron-Interval", HERDER_CRON), ("Cron-Tag-Action", "Cron")])
            self._save()
            self.node.monitor(r["herder"], True)
        workers = r.setdefault("workers", [])
        while len(workers) < DEFAULT_WORKERS and not r.get("workers-set"):
            workers.append(self._spawn(f"llama-worker-{len(workers) + 1}"))
            self._save()
        self._load_code("apm-registry", r["apm-registry"], "apm_registry", {})
        self._load_code("war", r["war"], "war", {"Name": "Wrapped AR", "Ticker": "wAR",
                                                 "Denomination": str(WAR_DENOMINATION)})
        for w in workers:
            self._load_code(f"worker:{w}", w, "herd_worker", {"Herder": r["herder"], "Model": r["model"]})
        self._load_code("herder", r["herder"], "herder", self._herder_config())
        self.publish_shipped()
        # after a restart: rebuild the services (and the workers' model) in the background, so the first
        # Llama.run is as quick as any other
        self.node.warm([r["war"], r["herder"], *workers])

    def _herder_config(self) -> dict:
        r = self.record
        return {"Token": r["war"], "Workers": list(r.get("workers", [])), "Model": r["model"],
                "ModelName": r.get("model-name", "aos-py demo model")}

    def _demo_model(self) -> str:
        from aos_py.inference.demo import demo_model_path
        from aos_py.inference.models import import_model

        gateway = self.node.gateway
        info = import_model(demo_model_path(), lambda p, tags: gateway.add_data(p, list(tags)))
        self.record["model-name"] = info.name
        return info.id

    def publish_shipped(self) -> list[str]:
        """Publish every shipped package newer than the version this node last published; returns what was."""
        from aos_py.node.packages import PackageError, shipped_packages

        done = []
        published = self.record.setdefault("published", {})
        try:
            packages = shipped_packages()
        except PackageError as exc:
            log.warning("shipped packages not published: %s", exc)
            return done
        for pkg in packages:
            full = f"{pkg.vendor}/{pkg.name}"
            have = published.get(full)
            if have is not None and _version(have) >= tuple(pkg.version_tuple):
                continue
            answer = self.publish(pkg)
            if answer.get("Result") != "success":
                log.warning("publishing %s@%s: %s", full, pkg.version, answer.get("Data"))
                if "newer" not in str(answer.get("Data", "")) and "exists" not in str(answer.get("Data", "")):
                    continue
            published[full] = pkg.version
            self._save()
            done.append(f"{full}@{pkg.version}")
        return done

    def publish(self, pkg) -> dict:
        """Publish one package as the node (registering its vendor first); the registry's reply tags + Data."""
        registry = self.record["apm-registry"]
        if pkg.vendor != "@apm":
            reply_fields(self.send(registry, [("Action", "APM.RegisterVendor")], pkg.vendor))
        return reply_fields(self.send(registry, pkg.publish_tags(), pkg.publish_data()))


    # -- operations the shell offers -----------------------------------------------------------------

    def faucet(self, recipient: str, amount: str | int | float = 1) -> dict:
        """Mint `amount` wAR to `recipient` (a process on this node gets a Credit-Notice)."""
        if "war" not in self.record:
            raise ServiceError("this node has no wAR token process")
        if self.node.proc(recipient) is None:
            raise Rejected(f"no process {recipient} on this node to receive wAR")
        quantity = war_units(amount)
        res = self._check(self.send(self.record["war"], [("Action", "Mint"), ("Recipient", recipient),
                                                         ("Quantity", quantity)]), "the faucet's Mint")
        return {"recipient": recipient, "quantity": quantity, "token": self.record["war"],
                "output": res.get("Output")}

    def herd_status(self) -> dict:
        """The herder's own account of its workers, queue, model and fees."""
        herder = self.record.get("herder")
        if herder is None:
            raise ServiceError("this node has no Llama Herder")
        res = self.node.dryrun(herder, tags=[("Action", "Herd-Status")])
        reply = reply_fields(res)
        try:
            status = json.loads(reply.get("Data") or "")
        except ValueError:
            raise ServiceError(f"the herder gave no status: {reply.get('Data')}") from None
        status["herder"] = herder
        status["token"] = self.record.get("war")
        status["engine"] = self.node.llama_engine()
        return status

    def set_workers(self, n: int) -> list[str]:
        """Grow the herd to `n` workers (or shrink it: extra workers leave the herd, their state is kept)."""
        if not isinstance(n, int) or not 1 <= n <= MAX_WORKERS:
            raise Rejected(f"the herd needs 1 to {MAX_WORKERS} workers, not {n!r}")
        r = self.record
        workers = r.setdefault("workers", [])
        retired = r.setdefault("retired-workers", [])
        herder = r["herder"]
        while len(workers) > n:
            w = workers.pop()
            retired.append(w)
            self._check(self.send(herder, [("Action", "Remove-Worker"), ("Worker", w)]), "Remove-Worker")
        while len(workers) < n:
            w = retired.pop() if retired else self._spawn(f"llama-worker-{len(workers) + 1}")
            workers.append(w)
            self._load_code(f"worker:{w}", w, "herd_worker", {"Herder": herder, "Model": r["model"]})
            self._check(self.send(herder, [("Action", "Add-Worker"), ("Worker", w)]), "Add-Worker")
        r["workers-set"] = True
        self.record.setdefault("code", {})["herder"] = ""   # the herder's config lists the workers: reload it
        self._save()
        self._load_code("herder", herder, "herder", self._herder_config())
        return list(workers)

    def use_model(self, model_id: str) -> dict:
        """Make the herd serve another model of the data store (an id from `aos model add`)."""
        tags = dict(self.node.gateway.tags(model_id) or [])
        if self.node.gateway.resolve(model_id) is None:
            raise Rejected(f"no model {model_id} in this node's data store (add one with `aos model add FILE.gguf`)")
        name = tags.get("Model-Name") or tags.get("Name") or model_id
        r = self.record
        res = self.send(r["herder"], [("Action", "Set-Model"), ("Model-Id", model_id), ("Model-Name", name)])
        self._check(res, "Set-Model")
        r["model"], r["model-name"] = model_id, name
        self._save()   # the workers' and herder's configs name the model: reloaded with it on the next start
        return {"model": model_id, "name": name}
