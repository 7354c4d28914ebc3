"""Runtime throughput: messages/s through ProcessRuntime.handle().

(a) Ping: a handler that replies to every Ping message.
(b) Eval of `1+1` from the owner.
Each is compared with a baseline measured in the same run: a bare lupa call of
an equivalent Lua function (no aos library, no sandbox, no limits), so the
ratio shows what the aos process machinery costs per message.
Also reports the resident memory of N booted idle processes.

    .venv/bin/python bench/bench_runtime.py [--messages 20000] [--processes 1000]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lupa.lua53 as lua53  # noqa: E402

from aos_py.runtime import ProcessRuntime  # noqa: E402

PID = "PROCESS-ID-" + "x" * 32
OWNER = "OWNER-ADDRESS-" + "y" * 29
ENV = {
    "Process": {
        "Id": PID,
        "Owner": OWNER,
        "Tags": [
            {"name": "Name", "value": "bench"},
            {"name": "Module", "value": "MODULE-ID"},
            {"name": "Authority", "value": "AUTHORITY-ADDRESS"},
        ],
    }
}


def message(n: int, tags: list[dict], data: str = "", sender: str = OWNER) -> dict:
    return {
        "Id": f"MSG-{n:08d}",
        "Target": PID,
        "Owner": sender,
        "From": sender,
        "Module": "MODULE-ID",
        "Block-Height": str(1000 + n),
        "Timestamp": 1700000000000 + n,
        "Data": data,
        "Tags": tags,
    }


def booted_runtime() -> ProcessRuntime:
    rt = ProcessRuntime()
    boot = message(0, ENV["Process"]["Tags"])
    boot["Id"] = PID
    rt.handle(boot, ENV)
    return rt


def rate(fn, count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        fn(i)
    return count / (time.perf_counter() - start)


def bench_ping(count: int) -> tuple[float, float]:
    rt = booted_runtime()
    setup = message(1, [{"name": "Action", "value": "Eval"}],
                    'Handlers.add("Ping", "Ping", function(m) m.reply({Action = "Pong", Data = "pong"}) end)')
    assert "Error" not in rt.handle(setup, ENV)
    tags = [{"name": "Action", "value": "Ping"}]
    sender = "SENDER-ADDRESS-" + "z" * 28

    def one(i: int) -> None:
        res = rt.handle(message(i + 2, tags, "ping", sender), ENV)
        assert res["Messages"][0]["Target"] == sender

    one(0)
    aos_rate = rate(one, count)
    rt.close()

    lua = lua53.LuaRuntime(register_eval=False, unpack_returned_tuples=True)
    reply = lua.eval("""function(from, ref)
        local msg = {Target = from, Data = "pong", Tags = {
          {name = "Data-Protocol", value = "ao"}, {name = "Variant", value = "ao.TN.1"},
          {name = "Type", value = "Message"}, {name = "Reference", value = ref}, {name = "Action", value = "Pong"}}}
        return string.format('{"Messages":[{"Target":"%s","Data":"%s","Tags":[%s]}]}', msg.Target, msg.Data,
          '{"name":"Reference","value":"' .. msg.Tags[4].value .. '"}')
    end""")

    def bare(i: int) -> None:
        reply(sender, str(i))

    base_rate = rate(bare, count)
    return aos_rate, base_rate


def bench_eval(count: int) -> tuple[float, float]:
    rt = booted_runtime()
    tags = [{"name": "Action", "value": "Eval"}]

    def one(i: int) -> None:
        res = rt.handle(message(i + 2, tags, "1+1"), ENV)
        assert res["Output"]["data"] == "2"

    one(0)
    aos_rate = rate(one, count)
    rt.close()

    lua = lua53.LuaRuntime(register_eval=False, unpack_returned_tuples=True)
    evaluate = lua.eval("function(code) return tostring(load('return ' .. code, 'aos', 't')()) end")

    def bare(i: int) -> None:
        evaluate("1+1")

    base_rate = rate(bare, count)
    return aos_rate, base_rate


def bench_runaway() -> tuple[float, float]:
    """Seconds until `while true do end` is stopped at the default budget, and the
    seconds a bare lupa state needs for the same number of loop iterations."""
    rt = booted_runtime()
    start = time.perf_counter()
    res = rt.handle(message(1, [{"name": "Action", "value": "Eval"}], "while true do end"), ENV)
    stopped = time.perf_counter() - start
    assert "compute budget exceeded" in res["Error"]
    assert rt.handle(message(2, [{"name": "Action", "value": "Eval"}], "1+1"), ENV)["Output"]["data"] == "2"
    rt.close()
    lua = lua53.LuaRuntime(register_eval=False)
    # `while true do end` is one JMP per iteration; a numeric for is one FORLOOP
    loop = lua.eval("function(n) for i = 1, n do end end")
    start = time.perf_counter()
    loop(rt.compute_budget)
    return stopped, time.perf_counter() - start


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def bench_idle_processes(count: int) -> tuple[float, float]:
    gc.collect()
    before = rss_bytes()
    keep = [booted_runtime() for _ in range(count)]
    gc.collect()
    after = rss_bytes()
    lua_bytes = sum(rt.memory_used() for rt in keep) / count
    for rt in keep:
        rt.close()
    return (after - before) / count, lua_bytes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--processes", type=int, default=1_000)
    args = ap.parse_args()

    ping, ping_base = bench_ping(args.messages)
    print(f"ping:  {ping:10,.0f} msg/s through handle()   bare lupa call {ping_base:12,.0f}/s"
          f"   ratio {ping / ping_base:.3f}")
    ev, ev_base = bench_eval(args.messages)
    print(f"eval:  {ev:10,.0f} msg/s through handle()   bare lupa call {ev_base:12,.0f}/s"
          f"   ratio {ev / ev_base:.3f}")
    stopped, bare = bench_runaway()
    print(f"runaway: `while true do end` stopped after {stopped:.2f} s at the default budget"
          f"   bare lupa loop of as many iterations {bare:.2f} s   ratio {stopped / bare:.2f}")
    per_proc, lua_heap = bench_idle_processes(args.processes)
    print(f"idle:  {args.processes} booted processes: {per_proc / 1024:,.0f} KiB RSS each "
          f"(Lua heap {lua_heap / 1024:,.0f} KiB each)")
    if ping < 10_000:
        print(f"note: ping rate {ping:,.0f} msg/s is below the 10,000 msg/s target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
