"""Code that Lua runs with its hooks off cannot escape the compute budget (issue 11 item 1): an xpcall whose
message handler loops forever after the budget stopped the body, and a __gc finalizer that loops forever
(run by the collector, or when the process is closed). Each message ends with an Error; the process and
the host go on."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from process_harness import ProcessHarness  # noqa: E402

from aos_py.runtime import ProcessRuntime  # noqa: E402

H = ProcessHarness(pid="R" * 43, owner="O" * 43, name="runaway", module="M" * 43, msg_id="MSG",
                   block_height="1")


def booted() -> ProcessRuntime:
    return H.booted(compute_budget=5_000_000)


def test_an_xpcall_handler_that_loops_forever_is_stopped():
    rt = booted()
    res = H.eval(rt, "return xpcall(function() while true do end end, function() while true do end end)", 1)
    assert "compute budget exceeded" in res["Error"]
    assert H.eval(rt, "return 1 + 1", 2)["Output"]["data"] == "2"
    # an ordinary error still reaches its handler
    res = H.eval(rt, "local ok, e = xpcall(function() error('plain', 0) end, function(e) return 'handled: ' .. e end) "
                     "return e", 3)
    assert res["Output"]["data"] == "handled: plain"
    rt.close()


def test_a_finalizer_that_loops_forever_never_runs():
    rt = booted()
    res = H.eval(rt, "X = setmetatable({}, {__gc = function() while true do end end}) X = nil "
                     "collectgarbage() collectgarbage() return 'collected'", 1)
    assert res["Output"]["data"] == "collected"
    res = H.eval(rt, "Y = setmetatable({}, {__gc = function() while true do end end}) "
                     "return tostring(getmetatable(Y).__gc ~= nil)", 2)
    assert res["Output"]["data"] == "true"           # the metatable still shows its __gc
    t0 = time.monotonic()
    rt.close()                                       # lua_close would run Y's finalizer: it does not
    assert time.monotonic() - t0 < 5
