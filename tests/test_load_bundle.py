""".load bundling: which files get bundled, in what shape, and how process errors map back to file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from aos_py.repl import render
from aos_py.repl.bundle import BundleError, build_bundle, find_requires, parse_load_argument, resolve_module
from aos_py.runtime import ProcessRuntime

PID = "PROCESS-ID-0123456789"
OWNER = "OWNER-ADDRESS-012345"
ENV = {"Process": {"Id": PID, "Owner": OWNER, "Tags": [{"name": "Name", "value": "loader"}]}}


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


class Proc:
    """A real aos process to run bundles in."""

    def __init__(self) -> None:
        self.rt = ProcessRuntime()
        self.n = 0
        self.rt.handle(self._msg(None, []), ENV)

    def _msg(self, data, tags):
        self.n += 1
        m = {"Id": PID if self.n == 1 else f"M-{self.n}", "Target": PID, "Owner": OWNER, "From": OWNER,
             "Module": "MOD", "Block-Height": "1", "Timestamp": 1700000000000 + self.n,
             "Tags": [{"name": k, "value": v} for k, v in tags]}
        if data is not None:
            m["Data"] = data
        return m

    def eval(self, code: str) -> dict:
        return self.rt.handle(self._msg(code, [("Action", "Eval")]), ENV)


@pytest.fixture(scope="module")
def proc():
    p = Proc()
    yield p
    p.rt.close()


def test_requires_are_read_as_lua_strings_and_comments_are_skipped():
    src = '''local a = require("a"); print("hi")
local b = require 'b.c'  -- require("line-comment")
--[[ require("block")
   still a comment ]] local c = require [[long]]
local d = require
  ("split")
local e = t.require("field")
local s = "require('in-string')"
local f, g = require("f"), require("g")
local h = "x" .. require("concat")
'''
    names = [(r.name, r.line) for r in find_requires(src)]
    assert names == [("a", 1), ("b.c", 2), ("long", 4), ("split", 5), ("f", 9), ("g", 9), ("concat", 10)]


def test_load_argument_accepts_quoted_paths_with_spaces():
    assert parse_load_argument(' "my project/main.lua" ') == "my project/main.lua"
    assert parse_load_argument("'a b.lua'") == "a b.lua"
    assert parse_load_argument("plain.lua") == "plain.lua"


def test_nested_require_resolves_against_requiring_file_then_main(tmp_path):
    write(tmp_path, "lib/helper.lua", "return 1")
    write(tmp_path, "shared.lua", "return 2")
    write(tmp_path, "pkg/init.lua", "return 3")
    requiring = tmp_path / "lib" / "x.lua"
    assert resolve_module("helper", requiring, tmp_path) == (tmp_path / "lib/helper.lua").resolve()
    assert resolve_module("shared", requiring, tmp_path) == (tmp_path / "shared.lua").resolve()
    assert resolve_module("pkg", requiring, tmp_path) == (tmp_path / "pkg/init.lua").resolve()
    assert resolve_module(".shared", requiring, tmp_path) == (tmp_path / "shared.lua").resolve()
    assert resolve_module("json", requiring, tmp_path) is None


def test_bundle_shape_order_and_tree(tmp_path):
    write(tmp_path, "main.lua", 'local a = require("lib.a")\nlocal b = require("b")\nreturn a.v .. b.v\n')
    write(tmp_path, "lib/a.lua", 'local h = require("helper")\nreturn { v = "a" .. h }\n')
    write(tmp_path, "lib/helper.lua", 'return "h"\n')
    write(tmp_path, "b/init.lua", 'return { v = "b" }\n')
    bundle = build_bundle(tmp_path / "main.lua")
    assert [m.path.name for m in bundle.modules] == ["helper.lua", "a.lua", "init.lua", "main.lua"]
    assert "local function _loaded_mod_lib_a()" in bundle.code
    assert '"@lib/a.lua"' in bundle.code  # compiled under its own name
    assert '_G.package.loaded["lib.a"] = _loaded_mod_lib_a()' in bundle.code
    assert bundle.code.rstrip().endswith("return a.v .. b.v")
    assert bundle.tree().splitlines() == ["main.lua MAIN", "├── lib/a.lua", "│   └── lib/helper.lua", "└── b/init.lua"]


def test_bundle_runs_in_a_process(tmp_path, proc):
    write(tmp_path, "main.lua", 'local a = require("lib.a")\nreturn a.v .. require("b").v\n')
    write(tmp_path, "lib/a.lua", 'local h = require("helper")\nreturn { v = "a" .. h }\n')
    write(tmp_path, "lib/helper.lua", 'return "h"\n')
    write(tmp_path, "b/init.lua", 'return { v = "b" }\n')
    res = proc.eval(build_bundle(tmp_path / "main.lua").code)
    assert "Error" not in res, res.get("Error")
    assert res["Output"]["data"] == "ahb"


def test_same_file_under_two_names_is_emitted_once(tmp_path):
    write(tmp_path, "main.lua", 'local a = require("util")\nlocal b = require(".util")\nreturn a == b\n')
    write(tmp_path, "util.lua", "return {}\n")
    bundle = build_bundle(tmp_path / "main.lua")
    assert bundle.code.count("local function _loaded_mod_") == 1
    assert '_G.package.loaded[".util"] = _G.package.loaded["util"]' in bundle.code


def test_runtime_error_in_required_file_maps_to_its_file_and_line(tmp_path, proc):
    write(tmp_path, "main.lua", 'local lib = require("lib")\nreturn lib.run()\n')
    write(tmp_path, "lib.lua", "local M = {}\nfunction M.run()\n  local t = nil\n  return t.field\nend\nreturn M\n")
    bundle = build_bundle(tmp_path / "main.lua")
    res = proc.eval(bundle.code)
    assert res.get("Error")
    shown = render.strip_ansi(render.format_error(res["Error"], bundle.code, bundle.origin, tmp_path))
    assert "attempt to index a nil value (local 't')" in shown
    assert "in " in shown and "lib.lua" in shown
    assert "4 |   return t.field" in shown
    assert render.ERROR_FOOTER in shown


def test_syntax_error_in_main_maps_to_main_line(tmp_path, proc):
    write(tmp_path, "main.lua", 'local x = require("dep")\nlocal y = = 2\n')
    write(tmp_path, "dep.lua", "return 1\n")
    bundle = build_bundle(tmp_path / "main.lua")
    res = proc.eval(bundle.code)
    text, line, file = render.parse_error(render.split_error(res["Error"])[1])
    assert file is None
    path, line = bundle.origin(line)
    assert path.name == "main.lua" and line == 2


def test_cycles_are_reported(tmp_path):
    write(tmp_path, "main.lua", 'require("a")\n')
    write(tmp_path, "a.lua", 'return require("b")\n')
    write(tmp_path, "b.lua", 'return require("a")\n')
    with pytest.raises(BundleError, match=r"require cycle: a.lua -> b.lua -> a.lua"):
        build_bundle(tmp_path / "main.lua")


def test_paths_with_spaces_and_missing_files(tmp_path):
    write(tmp_path, "my dir/main.lua", 'return require("the lib")\n')
    write(tmp_path, "my dir/the lib.lua", "return 7\n")
    bundle = build_bundle(tmp_path / "my dir" / "main.lua")
    assert len(bundle.modules) == 2
    with pytest.raises(BundleError, match="requires a \\*.lua file"):
        build_bundle(tmp_path / "notes.txt")
    with pytest.raises(BundleError, match="file not found: .*missing.lua"):
        build_bundle(tmp_path / "missing.lua")


def test_unknown_local_module_is_reported_but_builtins_are_not(tmp_path):
    write(tmp_path, "main.lua", 'local j = require("json")\nlocal b = require(".bint")\nlocal u = require(".utils")\nlocal x = require("nosuch")\n')
    bundle = build_bundle(tmp_path / "main.lua")
    assert len(bundle.warnings) == 1
    assert "main.lua:4: module 'nosuch'" in bundle.warnings[0]


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_counter_example_project_loads_and_counts(proc):
    bundle = build_bundle(EXAMPLES / "counter-project" / "main.lua")
    assert [m.path.name for m in bundle.modules] == ["init.lua", "counter.lua", "main.lua"]
    res = proc.eval(bundle.code)
    assert "Error" not in res, res.get("Error")
    assert render.strip_ansi(res["Output"]["data"]).startswith("counter ready: count = ")
    res = proc.eval("return require('lib.counter').increment(5) - require('lib.counter').increment(1)")
    assert res["Output"]["data"] == "-1"


def test_broken_require_example_points_at_lib_line_5(proc):
    bundle = build_bundle(EXAMPLES / "broken-require" / "main.lua")
    res = proc.eval(bundle.code)
    shown = render.strip_ansi(render.format_error(res["Error"], bundle.code, bundle.origin,
                                                  EXAMPLES / "broken-require"))
    assert "lib.lua" in shown and "5 |   return config.name" in shown


def test_one_require_name_for_two_files_is_warned_about(tmp_path):
    write(tmp_path, "main.lua", 'require("a.mod")\nlocal u = require("util")\n')
    write(tmp_path, "a/mod.lua", 'return require("util")\n')
    write(tmp_path, "a/util.lua", "return 1\n")
    write(tmp_path, "util.lua", "return 2\n")
    bundle = build_bundle(tmp_path / "main.lua")
    assert len(bundle.warnings) == 1
    assert "require 'util' is util.lua here but a/util.lua elsewhere" in bundle.warnings[0]


def test_later_errors_in_loaded_modules_name_their_file(tmp_path, proc):
    write(tmp_path, "main.lua", 'Later = require("my lib")\nreturn "loaded"\n')
    write(tmp_path, "my lib.lua", "local M = {}\n\nfunction M.boom()\n  return nil .. 'x'\nend\nreturn M\n")
    bundle = build_bundle(tmp_path / "main.lua")
    assert proc.eval(bundle.code)["Output"]["data"] == "loaded"
    res = proc.eval("return Later.boom()")  # a plain Eval, long after the .load
    text, line, file = render.parse_error(render.split_error(res["Error"])[1])
    assert (file, line) == ("my lib.lua", 4) and text.startswith("attempt to concatenate a nil value")
    shown = render.strip_ansi(render.format_error(res["Error"], "return Later.boom()", base=tmp_path))
    assert "in " in shown and "my lib.lua" in shown and "4 |   return nil .. 'x'" in shown


def test_syntax_error_in_a_dependency_names_it(tmp_path, proc):
    write(tmp_path, "main.lua", 'local d = require("dep")\nreturn d\n')
    write(tmp_path, "dep.lua", "local ok = 1\nlocal = 2\nreturn ok\n")
    bundle = build_bundle(tmp_path / "main.lua")
    res = proc.eval(bundle.code)
    text, line, file = render.parse_error(render.split_error(res["Error"])[1])
    assert (file, line) == ("dep.lua", 2)


def test_module_text_that_ends_in_brackets_survives_bundling(tmp_path, proc):
    write(tmp_path, "main.lua", 'return require("tricky")[1]\n')
    write(tmp_path, "tricky.lua", 'local t = {"a]]b", [==[x]]y]==]}\nreturn { t[1] .. t[2] }')
    res = proc.eval(build_bundle(tmp_path / "main.lua").code)
    assert res["Output"]["data"] == "a]]bx]]y"
