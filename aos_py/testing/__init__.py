"""`aos test`: scripted Lua test runs (busted-style specs, aolite's API) on an in-memory AO node.

- `aos_py.testing.sim.SimNode`: the in-memory node (aolite's model over aos-py process runtimes)
- `aos_py.testing.node.AosNode`: aolite's operations from Python (the `aos_node` pytest fixture)
- `aos_py.testing.runner`: the `aos test` command (discovery, parallel files, reports, exit codes)
- `aos_py.testing.pytest_plugin`: the pytest plugin

Nothing is imported until it is used, so the pytest plugin costs nothing in test runs that do not use it.
"""

from __future__ import annotations

__all__ = ["NODE_ID", "AosNode", "SimError", "SimNode"]


def __getattr__(name: str):
    if name in ("NODE_ID", "SimError", "SimNode"):
        from aos_py.testing import sim

        return getattr(sim, name)
    if name == "AosNode":
        from aos_py.testing.node import AosNode

        return AosNode
    raise AttributeError(name)
