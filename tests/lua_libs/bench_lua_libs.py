"""Timing of the Lua library's hot paths (not a test): bint(256) operations and
digest throughput, each with a ratio against a baseline measured in the same run.

    .venv/bin/python tests/lua_libs/bench_lua_libs.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from luastate import make_lua  # noqa: E402

BINT = b"""return function(N)
  local bint = require('.bint')(256)
  local a, b = bint('123456789012345678901234567890123456789'), bint('987654321987654321987654321')
  local clock = os.clock
  local function time(f)
    local best = math.huge
    for _ = 1, 3 do
      local t0 = clock(); f(); local t = clock() - t0
      if t < best then best = t end
    end
    return best / N * 1e6
  end
  local t = {}
  local x, y = 123456789, 987654321
  t[1] = time(function() for i = 1, N do local c = x + y end end)           -- baseline: Lua integer add
  t[2] = time(function() for i = 1, N do local c = tostring(x) end end)     -- baseline: Lua integer tostring
  t[3] = time(function() for i = 1, N do local c = a + b end end)
  t[4] = time(function() for i = 1, N do local c = a - b end end)
  t[5] = time(function() for i = 1, N do local c = a < b end end)
  t[6] = time(function() for i = 1, N do local c = a * b end end)
  t[7] = time(function() for i = 1, N do local c = a // b end end)
  t[8] = time(function() for i = 1, N do local c = tostring(a) end end)
  t[9] = time(function() for i = 1, N do local c = bint('123456789012345678901234567890123456789') end end)
  return t
end"""

DIGEST = b"""return function(n)
  local c = require('.crypto.init')
  local s = string.rep('a', n)
  local clock = os.clock
  local function mbs(f) local t0 = clock(); f(); return n / (clock() - t0) / 1e6 end
  return {
    mbs(function() local t = {} for i = 1, n do t[i] = s:byte(i) end end),  -- baseline: byte loop
    mbs(function() c.digest.md5(c.utils.stream.fromString(s)) end),
    mbs(function() c.digest.sha2_256(c.utils.stream.fromString(s)) end),
    mbs(function() c.digest.sha2_512(s) end),
    mbs(function() c.digest.sha3_256(s) end),
    mbs(function() c.digest.blake2b(s) end),
  }
end"""


def main() -> None:
    lua = make_lua()
    t = lua.execute(BINT)(20000)
    us = [t[i] for i in range(1, 10)]
    print("bint(256), microseconds per operation (best of 3; ratio vs a Lua integer op):")
    for name, i, base in (("add", 2, 0), ("sub", 3, 0), ("lt", 4, 0), ("mul", 5, 0), ("idiv", 6, 0),
                          ("tostring", 7, 1), ("parse", 8, 1)):
        print(f"  {name:9s} {us[i]:7.2f} us   x{us[i] / us[base]:.0f} of the Lua integer "
              f"{'tostring' if base else 'add'} ({us[base]:.3f} us)")
    d = lua.execute(DIGEST)(1 << 20)
    rates = [d[i] for i in range(1, 7)]
    print("digests of 1 MiB, MB/s (ratio vs a plain byte loop over the same string):")
    for name, r in zip(("md5", "sha2_256", "sha2_512", "sha3_256", "blake2b"), rates[1:], strict=True):
        print(f"  {name:9s} {r:6.2f} MB/s   {r / rates[0]:.2f}x of {rates[0]:.1f} MB/s")


if __name__ == "__main__":
    main()
