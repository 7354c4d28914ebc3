"""A bare Lua 5.3 state that loads the process library's modules the way the
runtime names them, for testing the leaf modules without a process."""

from __future__ import annotations

from pathlib import Path

import lupa.lua53 as lua53

LUA_DIR = Path(__file__).resolve().parent.parent.parent / "lua"


def make_lua() -> lua53.LuaRuntime:
    """A plain Lua 5.3 state whose `require` finds lua/<path>.lua as `.<path>`
    (and `x.init`), the way the process runtime names modules."""
    lua = lua53.LuaRuntime(register_eval=False, encoding=None)
    searcher = lua.eval(b"""function(root)
        return function(name)
          local rel = name:gsub('^%.', ''):gsub('%.', '/')
          for _, cand in ipairs({rel .. '.lua', rel .. '/init.lua'}) do
            local f = io.open(root .. '/' .. cand, 'rb')
            if f then
              local src = f:read('a'); f:close()
              local fn, err = load(src, name, 't')
              if not fn then error(err) end
              return fn, name
            end
          end
          return '\\n\\tno file for ' .. name
        end
    end""")
    lua.globals().package.searchers[3] = searcher(str(LUA_DIR).encode())
    lua.execute(b"""
        bit32 = require('.bit32')
        for k, v in pairs(require('.mathcompat')) do
          if math[k] == nil then math[k] = v end
        end
    """)
    return lua


def run(lua: lua53.LuaRuntime, code: str, *args: object) -> object:
    """Run a Lua function body with `...` = args; bytes results come back as str."""
    fn = lua.execute(b"return function(...) " + code.encode() + b" end")
    out = fn(*args)
    if isinstance(out, bytes):
        return out.decode("latin-1")
    return out


def lua_error(lua: lua53.LuaRuntime, code: str) -> str:
    """The error message raised by `code` (fails the test when it does not raise)."""
    fn = lua.execute(b"return function() return pcall(function() " + code.encode() + b" end) end")
    ok, err = fn()
    assert ok is False, f"expected an error from: {code}"
    return err.decode() if isinstance(err, bytes) else str(err)


U32 = 0xFFFFFFFF
