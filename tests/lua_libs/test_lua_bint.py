"""The .bint library: fixed-width wrapping integers, checked against Python ints."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from luastate import U32, lua_error, make_lua, run  # noqa: E402


@pytest.fixture(scope="module")
def lua():
    return make_lua()


# ---------------------------------------------------------------- bint


def wrap(v: int, bits: int = 256) -> int:
    """v as a signed two's complement value of the given width."""
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


@pytest.fixture(scope="module")
def bint_op(lua):
    """bint_op(bits, op, a, b) evaluates `A op B` on bints parsed from decimal strings."""
    return lua.execute(b"""return function(bits, code, a, b)
        local bint = require('.bint')(bits)
        local f = load('local bint, A, B = ... return ' .. code)
        local r = f(bint, bint(a), bint(b))
        if bint.isbint(r) then return tostring(r) end
        return r
    end""")


def _values(rng: random.Random, bits: int) -> list[int]:
    edge = [0, 1, -1, 2, 10, -10, (1 << (bits - 1)) - 1, -(1 << (bits - 1)), 1 << 32, (1 << 32) - 1,
            1 << 63, -(1 << 63), 10**18]
    rand = [wrap(rng.getrandbits(rng.choice([8, 31, 33, 64, 100, bits])) * rng.choice([1, -1]), bits)
            for _ in range(25)]
    return [wrap(v, bits) for v in edge] + rand


@pytest.mark.parametrize("bits", [256, 64, 96])
def test_bint_arithmetic_matches_python_ints(bint_op, bits):
    rng = random.Random(bits)
    vals = _values(rng, bits)
    for a in vals:
        for b in rng.sample(vals, 6):
            sa, sb = str(a).encode(), str(b).encode()

            def op(code, sa=sa, sb=sb):
                out = bint_op(bits, code.encode(), sa, sb)
                return int(out) if isinstance(out, bytes) else out

            assert op("A + B") == wrap(a + b, bits)
            assert op("A - B") == wrap(a - b, bits)
            assert op("A * B") == wrap(a * b, bits)
            assert op("-A") == wrap(-a, bits)
            assert op("A & B") == wrap(a & b, bits)
            assert op("A | B") == wrap(a | b, bits)
            assert op("A ~ B") == wrap(a ^ b, bits)
            assert op("~A") == wrap(~a, bits)
            assert op("A < B") == (a < b)
            assert op("A <= B") == (a <= b)
            assert op("A == B") == (a == b)
            ua, ub = a % (1 << bits), b % (1 << bits)
            assert op("bint.ult(A, B)") == (ua < ub)
            for s in (0, 1, 31, 32, 33, 64, bits - 1, bits):
                assert op(f"A << {s}") == wrap(ua << s, bits)
                assert op(f"A >> {s}") == wrap(ua >> s, bits)
            if b != 0 and not (a == -(1 << (bits - 1)) and b == -1):
                assert op("A // B") == a // b
                assert op("A % B") == a % b
                q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
                assert op("bint.tdiv(A, B)") == q
                assert op("bint.tmod(A, B)") == a - q * b
                assert op("bint.udiv(A, B)") == wrap(ua // ub, bits)
                assert op("bint.umod(A, B)") == wrap(ua % ub, bits)


def test_bint_strings_and_bases(lua):
    conv = lua.execute(b"""return function(s, base)
        local bint = require('.bint')(256)
        local v = bint(s)
        return tostring(v), bint.tobase(v, base or 16), bint.tobase(v, 16, false)
    end""")
    for v in (0, 1, -1, 12345, -(10**70), 2**255 - 1, -(2**255), 0xDEADBEEF << 100):
        dec, hx, shx = conv(str(v).encode(), None)
        assert int(dec) == v
        assert hx.decode() == format(v % 2**256, "x")
        assert int(shx, 16) == v
        assert int(conv(hex(v).encode(), None)[0]) == v  # '0x..' / '-0x..'
        assert int(conv(bin(v).encode(), None)[0]) == v  # '0b..' / '-0b..'
        assert conv(str(v).encode(), 2)[1].decode() == format(v % 2**256, "b")
    assert int(conv(b"+42", None)[0]) == 42
    assert int(conv(str(2**256 + 5).encode(), None)[0]) == 5  # wraps like the arithmetic
    for bad in ("1.5", "", "12a", "0x", "--1", "1e5", " 1"):
        assert lua_error(lua, f"require('.bint')(256)('{bad}')").endswith("value cannot be represented by a bint")
    assert "value cannot be represented by a bint" in lua_error(lua, "require('.bint')(256)({})")
    assert "value cannot be represented by a bint" in lua_error(lua, "require('.bint')(256)(0.5)")


def test_bint_behaviour_aos_programs_rely_on(lua):
    got = lua.execute(b"""return (function()
        local bint = require('.bint')(256)
        local a = bint('1000000000000000000000')
        return tostring(bint(5) == 5), tostring(bint(10) == bint(10)), tostring(bint(3) < 5),
               tostring(1 < bint(3)), math.type(bint(2) / bint(4)), tostring(bint(2) ^ 10),
               tostring(bint.ipow(2, 10)), math.type(bint.tonumber(bint(7))), bint.tonumber(a),
               #a, a[1], getmetatable(a) == bint, require('.bint')(256) == bint,
               tostring(bint.zero()), tostring(bint.one()), tostring(bint.maxinteger()),
               tostring(bint.mininteger()), bint.tointeger(bint(-3)), tostring(bint(7) + 1.5),
               tostring(bint.ipow(bint(3), 200)), tostring(bint.abs(bint.mininteger())),
               tostring(bint.max(bint(3), bint(-9))), tostring(bint.min(bint(3), bint(-9))),
               tostring(bint.iszero(bint(0))), tostring(bint.isneg(bint(-1))),
               tostring(bint.upowmod(bint(4), bint(13), bint(497))), tostring(bint(6.0))
    end)()""")
    vals = [v.decode() if isinstance(v, bytes) else v for v in got]
    assert vals[:8] == ["false", "true", "true", "true", "float", "1024.0", "1024", "integer"]
    assert vals[8] == 1e21
    assert vals[9:13] == [8, 1e21 % 2**32, True, True]
    assert vals[13:18] == ["0", "1", str(2**255 - 1), str(-(2**255)), -3]
    assert vals[18] == "8.5"
    assert int(vals[19]) == wrap(3**200)
    assert int(vals[20]) == -(2**255)
    assert vals[21:25] == ["3", "-9", "true", "true"]
    assert vals[25] == str(pow(4, 13, 497))
    assert vals[26] == "6"
    assert run(lua, "local b = require('.bint')(256); return tostring(b.trunc(-7.9)) .. ' ' .. tostring(b.trunc('2.5'))"
               ) == "-7 2"
    assert "attempt to divide by zero" in lua_error(lua, "local b = require('.bint')(256); return b(1) // b(0)")
    assert "bitsize is not multiple of word bitsize" in lua_error(lua, "require('.bint')(100)")


def test_bint_json_shape_is_the_word_array(lua):
    words = lua.execute(b"""return (function()
        local b = require('.bint')(256)(5 + 2^40 // 1)
        local out = {}
        for i, w in ipairs(b) do out[i] = w end
        return table.concat(out, ',')
    end)()""")
    v = 5 + 2**40
    assert words.decode() == ",".join(str((v >> (32 * i)) & U32) for i in range(8))


def test_bint_unsigned_division_stress(lua):
    """Many divisor/dividend shapes, including the rare add-back step of long division."""
    rng = random.Random(99)
    pairs = []
    for _ in range(1500):
        a = rng.getrandbits(rng.randrange(1, 257))
        b = rng.getrandbits(rng.randrange(1, 257)) or 1
        if rng.random() < 0.3:  # divisor with many high ones / dividend just above a multiple
            b = (1 << rng.randrange(33, 256)) - rng.randrange(1, 1000)
            a = (b * rng.getrandbits(rng.randrange(1, 200)) + rng.randrange(0, 3)) % (1 << 256)
        pairs.append((a, b))
    pairs.append(((1 << 256) - 1, (1 << 128) + 1))
    pairs.append((0x7FFF800000000000000000000000, 0x800000000000000000001))  # Knuth's add-back shape
    f = lua.execute(b"""return function(list)
        local bint = require('.bint')(256)
        local out = {}
        for line in list:gmatch('[^\\n]+') do
          local a, b = line:match('(%x+) (%x+)')
          local q, r = bint.udivmod(bint('0x' .. a), bint('0x' .. b))
          out[#out + 1] = bint.tobase(q, 16) .. ' ' .. bint.tobase(r, 16)
        end
        return table.concat(out, '\\n')
    end""")
    got = f("\n".join(f"{a:x} {b:x}" for a, b in pairs).encode()).decode().split("\n")
    for (a, b), line in zip(pairs, got, strict=True):
        q, r = (int(x, 16) for x in line.split())
        assert (q, r) == divmod(a, b), (hex(a), hex(b))


def test_bint_mixed_operands_and_in_place_methods(lua):
    got = lua.execute(b"""return (function()
        local bint = require('.bint')(256)
        local a = bint(5)
        local r = {
          tostring(a + '3'), tostring('10' - a), tostring(a < '6'), tostring(bint.eq(a, '5')),
          tostring(bint.parse('12')), math.type(bint.parse('1.5')), tostring(bint.tonumber('7')),
          #bint.tole(bint(0), true), bint.tobe(bint(258), true), tostring(bint.max(2, 3.5)),
          tostring(bint.isintegral(2.0)), tostring(bint.iseven(-4)),
        }
        local x = bint(10)
        x:_add(5); r[#r + 1] = tostring(x)
        x:_sub('20'); r[#r + 1] = tostring(x)
        x:_abs(); r[#r + 1] = tostring(x)
        x:_unm(); x:_inc(); r[#r + 1] = tostring(x)
        x:_shlone(); r[#r + 1] = tostring(x)
        x:_assign(7):_dec(); r[#r + 1] = tostring(x)
        return table.concat(r, ' ')
    end)()""")
    assert got.decode() == "8 5 true true 12 float 7 1 \x01\x02 3.5 false true 15 -5 5 -4 -8 6"
    assert "division overflow" in lua_error(lua, "local b = require('.bint')(256); b.tdiv(b.mininteger(), -1)")
    assert "value has no integer representation" in lua_error(lua, "local b = require('.bint')(256); return b(1) << 1.5")
    assert "value has not integer representation" in lua_error(lua, "local b = require('.bint')(256); b.ult(1, {})")
    assert "buffer is not a string" in lua_error(lua, "require('.bint')(256).fromle(5)")
