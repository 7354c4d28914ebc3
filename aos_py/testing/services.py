"""The node's services inside the in-memory node of `aos test` (see aos_py/node/services.py for the real ones).

The same Lua (lua/services/) and the same configuration as a real node: an APM registry holding the
packages aos-py ships, the wAR token, the Llama Herder (Cron-Interval 1-minute) and its workers serving
the demo model from /data/<model id>. All are owned by the node identity NODE_ID, which also mints wAR
for `faucet`.
"""

from __future__ import annotations

from aos_py.testing.sim import NODE_ID, SimError, SimNode

DEMO_MODEL_ID = "demo-model"
IDS = {"apm-registry": "apm-registry", "war": "wAR", "herder": "llama-herder"}


def _load(sim: SimNode, pid: str, source_name: str, config: dict) -> None:
    from aos_py.node.services import lua_literal
    from aos_py.resources import service_source

    code = f"ServiceConfig = {lua_literal(config)}\n{service_source(source_name)}"
    sim.run_code(pid, code, what=f"loading {source_name}.lua")


def start_services(sim: SimNode, workers: int = 2) -> dict:
    """Spawn and load the services once per node; returns their ids (as Client.services() does)."""
    if sim.services:
        return dict(sim.services)
    from aos_py.inference.demo import demo_model_path
    from aos_py.node.packages import PackageError, shipped_packages
    from aos_py.node.services import WAR_DENOMINATION

    if not 1 <= int(workers) <= 32:
        raise SimError(f"the herd needs 1 to 32 workers, not {workers}")
    model_path = demo_model_path()
    sim.add_data(DEMO_MODEL_ID, model_path)
    model_name = "aos-py demo model"
    try:
        from aos_py.inference.models import describe_file, info_from_tags

        model_name = info_from_tags(DEMO_MODEL_ID, describe_file(model_path)[0]).name
    except Exception:  # noqa: BLE001 - the name is only shown in Info answers
        pass
    record = dict(IDS)
    record["workers"] = [f"llama-worker-{i + 1}" for i in range(int(workers))]
    record["model"] = DEMO_MODEL_ID
    auto = sim.auto
    sim.auto = False
    try:
        sim.spawn(record["apm-registry"], owner=NODE_ID, tags={"Name": "apm-registry"})
        sim.spawn(record["war"], owner=NODE_ID, tags={"Name": "wAR"})
        sim.spawn(record["herder"], owner=NODE_ID,
                  tags=[{"name": "Name", "value": "llama-herder"}, {"name": "Cron-Interval", "value": "1-minute"},
                        {"name": "Cron-Tag-Action", "value": "Cron"}])
        for w in record["workers"]:
            sim.spawn(w, owner=NODE_ID, tags={"Name": w})
        sim.services = record
        for p in sim.processes.values():         # every process is told where the services are
            names = {t["name"] for t in p.env["Process"]["Tags"]}
            for name, key in (("APM-Registry", "apm-registry"), ("Wrapped-AR", "war"), ("Llama-Herder", "herder")):
                if name not in names:
                    p.env["Process"]["Tags"].append({"name": name, "value": record[key]})
        _load(sim, record["apm-registry"], "apm_registry", {})
        _load(sim, record["war"], "war", {"Name": "Wrapped AR", "Ticker": "wAR", "Denomination": str(WAR_DENOMINATION)})
        for w in record["workers"]:
            _load(sim, w, "herd_worker", {"Herder": record["herder"], "Model": DEMO_MODEL_ID})
        _load(sim, record["herder"], "herder", {"Token": record["war"], "Workers": list(record["workers"]),
                                                "Model": DEMO_MODEL_ID, "ModelName": model_name})
        try:
            packages = shipped_packages()
        except PackageError as exc:
            raise SimError(f"shipped packages: {exc}") from None
        registry = record["apm-registry"]
        vendors = set()
        for pkg in packages:
            if pkg.vendor != "@apm" and pkg.vendor not in vendors:
                vendors.add(pkg.vendor)
                sim.inject(NODE_ID, registry, [("Action", "APM.RegisterVendor")], pkg.vendor, run=False)
            sim.inject(NODE_ID, registry, list(pkg.publish_tags()), pkg.publish_data(), run=False)
        sim.run()
    finally:
        sim.auto = auto
    return dict(record)


def faucet(sim: SimNode, pid: str, amount: object = 1) -> dict:
    """Mint `amount` wAR (a decimal number of wAR) to `pid`; it gets a Credit-Notice."""
    from aos_py.node.errors import Rejected
    from aos_py.node.services import war_units

    if not sim.services:
        raise SimError("faucet needs the services: call startServices() first")
    if pid not in sim.processes:
        raise SimError(f"aolite: No such process: {pid}")
    try:
        quantity = war_units(amount)      # type: ignore[arg-type]
    except Rejected as exc:
        raise SimError(str(exc)) from None
    war = sim.services["war"]
    msg = sim.inject(NODE_ID, war, [("Action", "Mint"), ("Recipient", pid), ("Quantity", quantity)])
    return {"recipient": pid, "quantity": quantity, "token": war, "message": msg["Id"]}
