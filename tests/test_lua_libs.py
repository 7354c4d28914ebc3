"""The leaf Lua modules of the process library that stand in for Lua 5.2 and
aos basics (bit32, mathcompat, base64, chance), in a bare Lua 5.3 state and
checked against Python's own implementations. crypto, bint and apm have their
own files under tests/lua_libs/."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "lua_libs"))
from luastate import U32, lua_error, make_lua, run  # noqa: E402


@pytest.fixture(scope="module")
def lua():
    return make_lua()


# ---------------------------------------------------------------- bit32


def _arshift(x: int, n: int) -> int:
    x &= U32
    if n < 0:
        return (x << -n) & U32 if -n < 32 else 0
    if x & 0x80000000:
        return U32 if n >= 32 else ((x - (1 << 32)) >> n) & U32
    return x >> n if n < 32 else 0


def _rot(x: int, n: int) -> int:
    n &= 31
    x &= U32
    return ((x << n) | (x >> (32 - n))) & U32 if n else x


def test_bit32_matches_32bit_unsigned_arithmetic(lua):
    rng = random.Random(7)
    values = [0, 1, U32, 0x80000000, 0x7FFFFFFF, -1, -5, 1 << 40, 0x1234_5678_9ABC]
    values += [rng.randrange(-(1 << 40), 1 << 40) for _ in range(40)]
    f = lua.execute(b"return function(op, a, b) return bit32[op](a, b) end")
    for a in values:
        b = rng.choice(values)
        assert f(b"band", a, b) == (a & b) & U32
        assert f(b"bor", a, b) == (a | b) & U32
        assert f(b"bxor", a, b) == (a ^ b) & U32
        assert f(b"btest", a, b) == ((a & b) & U32 != 0)
        assert run(lua, "return bit32.bnot(...)", a) == (~a) & U32
        for n in (0, 1, 5, 31, 32, 33, -1, -7, -32):
            exp_l = ((a & U32) << n) & U32 if 0 <= n < 32 else (((a & U32) >> -n) if -32 < n < 0 else 0)
            assert f(b"lshift", a, n) == exp_l
            assert f(b"rshift", a, -n) == exp_l
            assert f(b"arshift", a, n) == _arshift(a, n)
            assert f(b"lrotate", a, n) == _rot(a, n)
            assert f(b"rrotate", a, n) == _rot(a, -n)


def test_bit32_variadic_and_fields(lua):
    assert run(lua, "return bit32.band()") == U32
    assert run(lua, "return bit32.bor()") == 0
    assert run(lua, "return bit32.band(0xFF, 0x0F, 0x3C)") == 0x0C
    assert run(lua, "return bit32.bxor(1, 2, 4, 1)") == 6
    assert run(lua, "return bit32.extract(0xABCD1234, 4, 8)") == 0x23
    assert run(lua, "return bit32.extract(0x80000000, 31)") == 1
    assert run(lua, "return bit32.replace(0xFFFFFFFF, 0, 8, 8)") == 0xFFFF00FF
    assert run(lua, "return bit32.replace(0, 0x1FF, 28, 4)") == 0xF0000000
    assert run(lua, "return bit32.band('7', 3.0)") == 3


def test_bit32_rejects_bad_arguments(lua):
    assert "number has no integer representation" in lua_error(lua, "bit32.band(1.5)")
    assert "bad argument #2 to 'bor' (number expected, got table)" in lua_error(lua, "bit32.bor(1, {})")
    assert "field cannot be negative" in lua_error(lua, "bit32.extract(1, -1)")
    assert "width must be positive" in lua_error(lua, "bit32.extract(1, 0, 0)")
    assert "trying to access non-existent bits" in lua_error(lua, "bit32.extract(1, 30, 3)")


# ---------------------------------------------------------------- mathcompat


def test_mathcompat_functions_match_libm(lua):
    f = lua.execute(b"return function(name, ...) return math[name](...) end")
    for x in (0.0, 1e-9, 0.3, -0.7, 1.0, 2.5, -10.0, 30.0, 700.0):
        for name, ref in (("cosh", math.cosh), ("sinh", math.sinh), ("tanh", math.tanh)):
            assert f(name.encode(), x) == pytest.approx(ref(x), rel=1e-12, abs=1e-300), (name, x)
    assert f(b"pow", 2, 10) == 1024.0
    assert f(b"log10", 1000) == math.log10(1000)
    assert f(b"pow", 2, 0.5) == pytest.approx(math.sqrt(2))
    for x in (1.0, 8.0, -3.5, 0.1, 1e300, 5e-324, 2.2250738585072014e-308, 123456789.0):
        m, e = lua.execute(b"return function(x) return math.frexp(x) end")(x)
        assert (m, e) == math.frexp(x)
        assert lua.execute(b"return function(m, e) return math.ldexp(m, e) end")(m, e) == x
    assert run(lua, "return math.ldexp(1, -1074)") == math.ldexp(1.0, -1074)
    assert run(lua, "return math.ldexp(2^-1000, 2000)") == math.ldexp(2.0**-1000, 2000)
    assert run(lua, "return math.ldexp(1, 1024)") == math.inf
    assert run(lua, "return math.type(select(2, math.frexp(8)))") == "integer"
    assert "number has no integer representation" in lua_error(lua, "math.ldexp(1, 0.5)")


# ---------------------------------------------------------------- base64


def test_base64_matches_python(lua):
    import base64 as pyb64

    rng = random.Random(3)
    samples = [b"", b"a", b"ab", b"abc", b"hello world", bytes(range(256))]
    samples += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(20)]
    enc = lua.execute(b"return function(s) return require('.base64').encode(s) end")
    dec = lua.execute(b"return function(s) return require('.base64').decode(s) end")
    for s in samples:
        e = enc(s)
        assert e == pyb64.b64encode(s)
        assert dec(e) == s
    assert dec(b"aGVs\nbG8g d29y\r\nbGQ=") == b"hello world"  # whitespace ignored
    assert dec(b"YWI") == b"ab"  # missing padding tolerated


def test_base64_custom_alphabet(lua):
    import base64 as pyb64

    data = bytes(range(200, 256)) * 3
    got = lua.execute(b"""return function(s)
        local b64 = require('.base64')
        local e = b64.encode(s, b64.makeencoder('-', '_'))
        return e, b64.decode(e, b64.makedecoder('-', '_'))
    end""")(data)
    assert got[0] == pyb64.urlsafe_b64encode(data)
    assert got[1] == data
    assert "expects a string, got table" in lua_error(lua, "require('.base64').encode({})")


# ---------------------------------------------------------------- chance (MT19937)


def python_mt(seed: int) -> random.Random:
    """Python's MT19937 with its state set by init_genrand(seed)."""
    state = [seed & U32]
    for i in range(1, 624):
        prev = state[-1]
        state.append((1812433253 * (prev ^ (prev >> 30)) + i) & U32)
    r = random.Random()
    r.setstate((3, tuple(state + [624]), None))
    return r


@pytest.mark.parametrize("seed", [0, 1, 5489, 100012345, 2**32 + 17, -1])
def test_chance_is_mt19937(lua, seed):
    ref = python_mt(seed)
    draw = lua.execute(b"""return function(seed, n)
        local c = require('.chance')
        c.seed(seed)
        local out = {}
        for i = 1, n do out[i] = c.genrand_int32() end
        return table.concat(out, ',')
    end""")
    got = [int(x) for x in draw(seed, 1500).split(b",")]  # crosses two twists
    assert got == [ref.getrandbits(32) for _ in range(1500)]


def test_chance_random_and_integer(lua):
    ref = python_mt(42)
    words = [ref.getrandbits(32) for _ in range(20)]
    got = lua.execute(b"""return function()
        local c = require('.chance')
        c.seed(42)
        local out = {}
        for i = 1, 10 do out[#out + 1] = c.random() end
        for i = 1, 10 do out[#out + 1] = c.integer(-5, 100) end
        return out
    end""")()
    values = [got[i] for i in range(1, 21)]
    assert values[:10] == [w * 2.0**-32 for w in words[:10]]
    assert values[10:] == [math.floor(w * 2.0**-32 * 106 + -5) for w in words[10:]]
    assert run(lua, "local c = require('.chance'); c.seed(1); return c.integer(5, 5)") == 5
    assert "max must bigger than min" in lua_error(lua, "require('.chance').integer(3, 2)")
