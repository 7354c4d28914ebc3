"""`require("aolite")` in `aos test` specs: aolite 0.5's documented API, function by function, against the
behaviour its README and source describe, on aos-py's runtime; then what aos-py adds (blueprints, packages,
time, cron, output), and the same operations from Python (AosNode)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from aos_py.testing.node import AosNode, matches_spec
from aos_py.testing.sim import SimError
from aos_py.testing.spec import run_file

# aolite README, "Quick Start": process-source.lua
PROCESS_SOURCE = """\
print("Process loaded with ID: " .. ao.id)
Handlers.add("Ping", function(msg)
    msg.reply({ Action = "Pong" })
end)
"""

COUNTING_MODULE = """\
-- a custom process module: the reference process, counting what it handles
local process = require(".process")
local M = {}
function M.handle(msg, env)
  Counted = (Counted or 0) + 1
  return process.handle(msg, env)
end
return M
"""

ECHO_MODULE = """\
-- a process module of its own: answers every message, no Handlers
return {
  handle = function(msg, env)
    return { Output = "echoed", Messages = { { Target = msg.From, Data = "echo: " .. tostring(msg.Data),
      Tags = { { name = "Action", value = "Echo" } } } } }
  end,
}
"""

HELPER = 'return { greet = function(n) return "hello " .. n end }\n'

USES_HELPER = """\
local helper = require("lib.helper")
Handlers.add("greet", "Greet", function(m) m.reply({ Action = "Greeting", Data = helper.greet(m.From) }) end)
"""

AOLITE_SPEC = r'''
local aolite = require("aolite")

describe("spawnProcess", function()
  before_each(function() aolite.clearAllProcesses() end)

  it("loads a module path (README quick start) and answers Ping with Pong", function()
    aolite.spawnProcess("Process1", "process-source")
    aolite.send({ From = "Process1", Target = "Process1", Action = "Ping" })
    local response = aolite.getLastMsg("Process1")
    assert.are.equal("Pong", response.Action)
    assert.matches("Process loaded with ID: Process1", aolite.getOutput("Process1"), 1, true)
  end)

  it("runs a source string with the On-Boot = Data tag (list and map forms)", function()
    aolite.spawnProcess("p1", "Loaded = 'list'", { { name = "On-Boot", value = "Data" } })
    aolite.spawnProcess("p2", "Loaded = 'map'", { ["On-Boot"] = "Data" })
    assert.are.equal("list", aolite.eval("p1", "Loaded"))
    assert.are.equal("map", aolite.eval("p2", "Loaded"))
  end)

  it("spawns with no source", function()
    aolite.spawnProcess("empty", nil)
    assert.are.equal("empty", aolite.eval("empty", "ao.id"))
  end)

  it("makes the process its own Owner, names it by id and promotes tags to globals", function()
    aolite.spawnProcess("tagged", nil, { Color = "blue", ["X-Level"] = "3" })
    assert.are.equal("tagged", aolite.eval("tagged", "Owner"))
    assert.are.equal("tagged", aolite.eval("tagged", "Name"))
    assert.are.equal("blue", aolite.eval("tagged", "Color"))
    assert.are.equal("3", aolite.eval("tagged", "_G['X-Level']"))
    assert.are.equal("blue", aolite.eval("tagged", "ao.env.Process.Tags.Color"))
  end)

  it("refuses an id that exists", function()
    aolite.spawnProcess("dup", nil)
    assert.has_error(function() aolite.spawnProcess("dup", nil) end, "aolite: Process with ID dup already exists")
  end)

  it("resolves dotted paths and the process's own requires from package.path", function()
    package.path = "./lib/?.lua;" .. package.path
    aolite.spawnProcess("g", "uses-helper")
    aolite.spawnProcess("caller", nil)
    aolite.send({ From = "caller", Target = "g", Action = "Greet" })
    assert.are.equal("hello caller", aolite.getLastMsg("caller", { Action = "Greeting" }).Data)
  end)

  it("takes slash paths and .lua file paths too", function()
    aolite.spawnProcess("slash", "lib/uses-helper")
    aolite.spawnProcess("file", "process-source.lua")
    assert.are.equal("table", aolite.eval("slash", "type(Handlers.list)"))
    assert.matches("Process loaded with ID: file", aolite.getOutput("file"), 1, true)
  end)

  it("uses a Module tag that names a Lua process module", function()
    aolite.spawnProcess("counted", nil, { Module = "modules.counting" })
    aolite.spawnProcess("echo", nil, { Module = "modules.echo" })
    aolite.spawnProcess("s", nil)
    aolite.send({ From = "s", Target = "counted", Action = "Anything" })
    assert.is_true(aolite.eval("counted", "Counted") >= 2)   -- the message and the EvalRequest
    aolite.send({ From = "s", Target = "echo", Data = "hey" })
    local echo = aolite.getLastMsg("s")
    assert.are.equal("Echo", echo.Action)
    assert.are.equal("echo: hey", echo.Data)
    assert.are.equal("modules.echo", echo.Module)
  end)

  it("returns a descriptor whose env reads the process's globals", function()
    local proc = aolite.spawnProcess("d", "Answer = 42", { ["On-Boot"] = "Data" })
    assert.are.equal("d", proc.id)
    assert.are.equal(42, proc.env.Answer)
  end)

  it("reports a source that fails", function()
    assert.has_error(function() aolite.spawnProcess("bad", "error('nope')", { ["On-Boot"] = "Data" }) end)
    assert.has_error(function() aolite.spawnProcess("missing", "no.such.module") end)
  end)
end)

describe("send", function()
  before_each(function()
    aolite.clearAllProcesses()
    aolite.setAutoSchedule(true)
    aolite.spawnProcess("p", "process-source")
    aolite.spawnProcess("sender", nil)
  end)

  it("needs From and Target of spawned processes", function()
    assert.has_error(function() aolite.send({ Target = "p", Action = "Ping" }) end, "From must be defined")
    assert.has_error(function() aolite.send({ From = "sender", Action = "Ping" }) end, "Target must be defined")
    assert.has_error(function() aolite.send({ From = "ghost", Target = "p" }) end, "aolite: No such process: ghost")
    assert.has_error(function() aolite.send({ From = "sender", Target = "ghost" }) end,
      "aolite: Target process not found: ghost")
  end)

  it("returns the message, with an id From#Reference from the sender's own counter", function()
    local m1 = aolite.send({ From = "sender", Target = "p", Action = "Ping", Data = "x" })
    local m2 = aolite.send({ From = "sender", Target = "p", Action = "Ping" })
    assert.are.equal("sender#1", m1.Id)
    assert.are.equal("sender#2", m2.Id)
    assert.are.equal("sender", m1.From)
    assert.are.equal("sender", m1.Owner)
    assert.are.equal("p", m1.Target)
    assert.are.equal("x", m1.Data)
    assert.are.equal("Ping", m1.Action)
  end)

  it("takes Tags as a map or a list", function()
    aolite.send({ From = "sender", Target = "p", Action = "Ping", Tags = { Color = "red" } })
    aolite.send({ From = "sender", Target = "p", Action = "Ping", Tags = { { name = "Size", value = "L" } } })
    local msgs = aolite.getAllMsgs("p", { Action = "Ping" })
    assert.are.equal("L", msgs[1].Size)
    assert.are.equal("red", msgs[2].Color)
    assert.are.equal("red", msgs[2].Tags.Color)
  end)

  it("normalises tag names as aos 2.0.4 does, and keeps the names as sent for the test", function()
    aolite.spawnProcess("echo", "Handlers.add('e', 'Echo', function(m) Seen = m['X-Mytag'] m.reply({ ['X-ReplyTag'] = 'r' }) end)",
      { ["On-Boot"] = "Data" })
    aolite.send({ From = "sender", Target = "echo", Action = "Echo", ["X-MyTag"] = "v" })
    assert.are.equal("v", aolite.eval("echo", "Seen"))
    local reply = aolite.getLastMsg("sender")
    assert.are.equal("r", reply["X-Replytag"])
    assert.are.equal("r", reply["X-ReplyTag"])
    assert.are.equal("r", reply.Tags["X-ReplyTag"])
  end)

  it("schedules automatically: the reply has arrived when send returns", function()
    aolite.send({ From = "sender", Target = "p", Action = "Ping" })
    local pong = aolite.getLastMsg("sender")
    assert.are.equal("Pong", pong.Action)
    assert.are.equal("p", pong.From)
    assert.are.equal("sender#1", pong["Pushed-For"])
  end)
end)

describe("eval", function()
  before_each(function()
    aolite.clearAllProcesses()
    aolite.spawnProcess("p", nil)
  end)

  it("returns Lua values", function()
    assert.are.equal(3, aolite.eval("p", "1 + 2"))
    assert.are.equal("s", aolite.eval("p", "'s'"))
    assert.is_true(aolite.eval("p", "true"))
    assert.is_nil(aolite.eval("p", "nil"))
    assert.are.same({ 1, 2, { k = "v", [10] = false } }, aolite.eval("p", "{ 1, 2, { k = 'v', [10] = false } }"))
    assert.are.equal(1.5, aolite.eval("p", "1.5"))
  end)

  it("runs statements and changes the process's state", function()
    assert.is_nil(aolite.eval("p", "X = 5"))
    assert.are.equal(5, aolite.eval("p", "X"))
    assert.are.equal(10, aolite.eval("p", "local y = X * 2 return y"))
  end)

  it("raises on error", function()
    assert.has_error(function() aolite.eval("p", "error('boom')") end)
    local ok, err = pcall(aolite.eval, "p", "error('boom')")
    assert.is_false(ok)
    assert.matches("Error in evaluation: Runtime error: .*boom", err)
    local ok2, err2 = pcall(aolite.eval, "p", "this is not lua")
    assert.matches("Error in evaluation: Compilation error", err2)
    assert.has_error(function() aolite.eval("nobody", "1") end)
  end)

  it("goes through the process as an EvalRequest and an EvalResponse, as in aolite", function()
    aolite.eval("p", "1")
    local all = aolite.getAllMsgs("p")
    assert.are.equal(2, #all)
    assert.are.equal("EvalResponse", all[1].Action)
    assert.are.equal("EvalRequest", all[2].Action)
  end)

  it("delivers what the evaluated code sends", function()
    aolite.spawnProcess("q", "Handlers.add('n', 'Note', function(m) Noted = m.Data end)", { ["On-Boot"] = "Data" })
    aolite.eval("p", "Send({ Target = 'q', Action = 'Note', Data = 'hi' })")
    assert.are.equal("hi", aolite.eval("q", "Noted"))
  end)

  it("works past a prepended catch-all handler, which keeps its place", function()
    aolite.eval("p", "Handlers.prepend('guard', function() return true end, function() Guarded = (Guarded or 0) + 1 end)")
    assert.are.equal(7, aolite.eval("p", "7"))
    assert.are.equal("guard", aolite.eval("p", "Handlers.list[1].name"))
    assert.are.equal("EvalRequestHandler", aolite.eval("p", "Handlers.list[#Handlers.list].name"))
  end)

  it("returns tables with their functions left out", function()
    local inbox = aolite.eval("p", "Handlers.list")
    assert.is_table(inbox)
    assert.is_nil(inbox[1].handle)
    assert.is_string(inbox[1].name)
  end)
end)

describe("reading messages", function()
  before_each(function()
    aolite.clearAllProcesses()
    aolite.spawnProcess("p", "process-source")
    aolite.spawnProcess("a", nil)
    aolite.spawnProcess("b", nil)
    aolite.send({ From = "a", Target = "p", Action = "Ping", Data = "1" })
    aolite.send({ From = "b", Target = "p", Action = "Ping", Data = "2" })
    aolite.send({ From = "a", Target = "p", Action = "Other", Data = "3" })
  end)

  it("getAllMsgs: every message sent to the process, newest first, optionally matched", function()
    local all = aolite.getAllMsgs("p")
    assert.are.equal(3, #all)
    assert.are.same({ "3", "2", "1" }, { all[1].Data, all[2].Data, all[3].Data })
    assert.are.equal(2, #aolite.getAllMsgs("p", { Action = "Ping" }))
    assert.are.equal(1, #aolite.getAllMsgs("a", "Pong"))
    assert.is_nil(aolite.getAllMsgs("nobody"))
  end)

  it("getFirstMsg / getLastMsg with a match spec (table, Action string, function, pattern)", function()
    assert.are.equal("1", aolite.getFirstMsg("p").Data)
    assert.are.equal("3", aolite.getLastMsg("p").Data)
    assert.are.equal("2", aolite.getLastMsg("p", { Action = "Ping" }).Data)
    assert.are.equal("2", aolite.getLastMsg("p", "Ping").Data)
    assert.are.equal("1", aolite.getFirstMsg("p", function(m) return m.From == "a" end).Data)
    assert.are.equal("3", aolite.getLastMsg("p", { Action = "Oth.*" }).Data)
    assert.are.equal("2", aolite.getLastMsg("p", { From = { "b", "c" } }).Data)
    assert.is_nil(aolite.getLastMsg("p", { Action = "Nope" }))
  end)

  it("getMsgs: matching messages of every process; getMsgById", function()
    local pongs = aolite.getMsgs({ Action = "Pong" })
    assert.are.equal(2, #pongs)
    local ids = {}
    for _, m in ipairs(pongs) do ids[m.Target] = m.Id end
    assert.is_not_nil(ids.a)
    assert.is_not_nil(ids.b)
    assert.are.equal("Pong", aolite.getMsgById(ids.a).Action)
    assert.are.equal("Ping", aolite.getMsgById("a#1").Action)
    assert.is_nil(aolite.getMsgById("no-such-id"))
  end)

  it("clearAllMessages forgets a process's history only", function()
    assert.is_true(aolite.clearAllMessages("p"))
    assert.are.same({}, aolite.getAllMsgs("p"))
    assert.are.equal("Ping", aolite.getMsgById("a#1").Action)
    assert.are.equal(1, #aolite.getAllMsgs("a"))
  end)
end)

describe("scheduling", function()
  before_each(function()
    aolite.clearAllProcesses()
    aolite.setAutoSchedule(true)
    aolite.spawnProcess("p", "process-source")
    aolite.spawnProcess("s", nil)
  end)
  after_each(function() aolite.setAutoSchedule(true) end)

  it("setAutoSchedule(false): sends wait in the queue until runScheduler", function()
    assert.is_true(aolite.isAutoSchedule())
    aolite.setAutoSchedule(false)
    assert.is_false(aolite.isAutoSchedule())
    aolite.send({ From = "s", Target = "p", Action = "Ping" })
    assert.is_nil(aolite.getLastMsg("s"))
    assert.are.equal(1, #aolite.listQueueMessages("p"))
    aolite.runScheduler()
    assert.are.equal("Pong", aolite.getLastMsg("s").Action)
    assert.are.same({}, aolite.listQueueMessages("p"))
    assert.has_error(function() aolite.setAutoSchedule("yes") end, "setAutoSchedule expects a boolean")
  end)

  it("queue: queues without running, even with auto-scheduling on", function()
    local m = aolite.queue({ From = "s", Target = "p", Action = "Ping" })
    assert.are.equal("s#1", m.Id)
    local q = aolite.listQueueMessages("p")
    assert.are.equal(1, #q)
    assert.are.equal(m.Id, q[1].Id)
    assert.is_nil(aolite.listQueueMessages("nobody"))
    aolite.runScheduler()
    assert.are.equal("Pong", aolite.getLastMsg("s").Action)
  end)

  it("reorderQueue: the queue runs in the given order", function()
    aolite.setAutoSchedule(false)
    aolite.spawnProcess("log", "Seen = {} Handlers.add('n', 'Note', function(m) table.insert(Seen, m.Data) end)",
      { ["On-Boot"] = "Data" })
    local ids = {}
    for i = 1, 3 do
      ids[i] = aolite.queue({ From = "s", Target = "log", Action = "Note", Data = tostring(i) }).Id
    end
    aolite.reorderQueue("log", { ids[3], ids[1], ids[2] })
    aolite.runScheduler()
    assert.are.same({ "3", "1", "2" }, aolite.eval("log", "Seen"))
    assert.has_error(function() aolite.reorderQueue("nobody", {}) end, "No queue found for processId: nobody")
    aolite.queue({ From = "s", Target = "log", Action = "Note", Data = "4" })
    assert.has_error(function() aolite.reorderQueue("log", {}) end, "newOrderIds must have exactly 1 items")
  end)

  it("runScheduler(cycles) stops a message loop", function()
    aolite.setAutoSchedule(false)
    aolite.spawnProcess("loop", "N = 0 Handlers.add('again', 'Again', function(m) N = N + 1 Send({ Target = 'loop2', Action = 'Again' }) end)",
      { ["On-Boot"] = "Data" })
    aolite.spawnProcess("loop2", "Handlers.add('again', 'Again', function(m) Send({ Target = 'loop', Action = 'Again' }) end)",
      { ["On-Boot"] = "Data" })
    aolite.queue({ From = "s", Target = "loop", Action = "Again" })
    aolite.runScheduler(3)
    assert.are.equal(2, aolite.eval("loop", "N"))
  end)

  it("clearAllProcesses removes every process and message", function()
    aolite.send({ From = "s", Target = "p", Action = "Ping" })
    aolite.clearAllProcesses()
    assert.is_nil(aolite.getAllMsgs("p"))
    assert.is_nil(aolite.getMsgById("s#1"))
    assert.has_error(function() aolite.eval("p", "1") end)
    aolite.spawnProcess("p", nil)
    assert.are.equal("p", aolite.eval("p", "ao.id"))
  end)
end)

describe("logging", function()
  it("setMessageLog writes every queued message as a JSON line", function()
    aolite.clearAllProcesses()
    aolite.setMessageLog("messages.log")
    assert.are.equal("messages.log", aolite.getMessageLog())
    aolite.spawnProcess("p", "process-source")
    aolite.spawnProcess("s", nil)
    aolite.send({ From = "s", Target = "p", Action = "Ping" })
    aolite.setMessageLog(nil)
    local lines = {}
    for line in io.lines("messages.log") do lines[#lines + 1] = require("json").decode(line) end
    assert.are.equal(2, #lines)
    assert.are.equal("s#1", lines[1].Id)
    assert.are.equal("p", lines[2].From)
  end)

  it("setPrintProcessOutput shows each process's prints", function()
    aolite.clearAllProcesses()
    assert.is_false(aolite.isPrintProcessOutput())
    aolite.setPrintProcessOutput(true)
    aolite.spawnProcess("talker", "print('hello there')", { ["On-Boot"] = "Data" })
    aolite.setPrintProcessOutput(false)
  end)
end)

describe("processes spawning processes", function()
  it("gives children the id parent:N and tells the parent with Spawned", function()
    aolite.clearAllProcesses()
    aolite.spawnProcess("parent", [[
      Handlers.add("make", "Make", function(m)
        local spawned = Spawn(ao._module, { Data = "Handlers.add('hi', 'Hi', function(x) x.reply({ Action = 'Hello' }) end)",
          ["On-Boot"] = "Data" }).receive()
        m.reply({ Action = "Made", Process = spawned.Process })
      end)
    ]], { ["On-Boot"] = "Data" })
    aolite.spawnProcess("user", nil)
    aolite.send({ From = "user", Target = "parent", Action = "Make" })
    local made = aolite.getLastMsg("user", { Action = "Made" })
    assert.are.equal("parent:1", made.Process)
    assert.are.equal("parent", aolite.eval("parent:1", "Owner"))
    assert.is_not_nil(aolite.getLastMsg("parent", { Action = "Spawned", Process = "parent:1" }))
    aolite.send({ From = "user", Target = "parent:1", Action = "Hi" })
    assert.are.equal("Hello", aolite.getLastMsg("user").Action)
  end)
end)
'''

EXTRAS_SPEC = r'''
local aolite = require("aolite")

describe("beyond aolite", function()
  before_each(function() aolite.clearAllProcesses() end)

  it("spawns with blueprints and packages pre-installed", function()
    aolite.spawnProcess("t", nil, nil, { blueprints = { "token" }, packages = { "@aos-py/strings" } })
    assert.are.equal("PNTS", aolite.eval("t", "Ticker"))
    assert.are.equal("table", aolite.eval("t", "type(require('@aos-py/strings'))"))
    aolite.loadBlueprint("t", "chat")
    assert.matches("@aos%-py/ascii%-table@%d", aolite.installPackage("t", "@aos-py/ascii-table"))
    assert.has_error(function() aolite.loadBlueprint("t", "nope") end)
    assert.has_error(function() aolite.installPackage("t", "@nobody/nothing") end)
  end)

  it("loads a file into a process like .load, also after the Owner changed", function()
    aolite.spawnProcess("l", nil)
    aolite.eval("l", "Owner = 'someone else'")
    aolite.load("l", "process-source.lua")
    assert.matches("Process loaded with ID: l", aolite.getOutput("l"), 1, true)
    aolite.load("l", "process-source.lua")         -- a second load runs it again
    assert.are.equal(2, #aolite.getPrints("l"))
    aolite.eval("l", "Owner = nil")
    aolite.loadBlueprint("l", "token")
    assert.is_nil(aolite.eval("l", "Owner"))
  end)

  it("controls Timestamp and Block-Height", function()
    aolite.setTimestamp(1700000000000)
    aolite.setBlockHeight(1234)
    assert.are.equal(1700000000000, aolite.getTimestamp())
    assert.are.equal(1234, aolite.getBlockHeight())
    aolite.spawnProcess("clock", "Handlers.add('t', 'Time', function(m) m.reply({ Action = 'Now', Data = tostring(os.time()) }) end)",
      { ["On-Boot"] = "Data" })
    aolite.spawnProcess("s", nil)
    local sent = aolite.send({ From = "s", Target = "clock", Action = "Time" })
    assert.are.equal(1700000000000, sent.Timestamp)
    assert.are.equal(1234, sent["Block-Height"])
    assert.are.equal("1700000000000", aolite.getLastMsg("s", { Action = "Now" }).Data)
  end)

  it("sends cron ticks when time passes, and on demand", function()
    aolite.setTimestamp(0)
    aolite.spawnProcess("cron", "Ticks = {} Handlers.add('c', 'Cron', function(m) table.insert(Ticks, m.Timestamp) end)",
      { ["On-Boot"] = "Data", ["Cron-Interval"] = "10-seconds", ["Cron-Tag-Action"] = "Cron" })
    assert.are.equal(3, aolite.advanceTime(35000))
    assert.are.same({ 10000, 20000, 30000 }, aolite.eval("cron", "Ticks"))
    assert.are.equal(35000, aolite.getTimestamp())
    local tick = aolite.tick("cron")
    assert.are.equal("Cron", tick.Action)
    assert.are.equal(4, #aolite.eval("cron", "Ticks"))
  end)

  it("shows a process's prints, errors and last result", function()
    aolite.spawnProcess("e", [[
      Handlers.add("say", "Say", function(m) print("said " .. m.Data) end)
      Handlers.add("fail", "Fail", function(m) error("it broke") end)
    ]], { ["On-Boot"] = "Data" })
    aolite.spawnProcess("s", nil)
    aolite.send({ From = "s", Target = "e", Action = "Say", Data = "hi" })
    assert.are.equal("said hi", aolite.getPrints("e")[#aolite.getPrints("e")])
    assert.are.same({}, aolite.getErrors("e"))
    aolite.send({ From = "s", Target = "e", Action = "Fail" })
    local errors = aolite.getErrors("e")
    assert.are.equal(1, #errors)
    assert.matches("it broke", errors[1])
    assert.is_string(aolite.getLastResult("e").Error)
    aolite.clearOutput("e")
    assert.are.same({}, aolite.getPrints("e"))
    assert.are.same({ "e", "s" }, aolite.listProcesses())
  end)
end)
'''


def lay_out(root: Path) -> None:
    (root / "lib").mkdir()
    (root / "modules").mkdir()
    (root / "spec").mkdir()
    (root / "process-source.lua").write_text(PROCESS_SOURCE, encoding="utf-8")
    (root / "lib" / "helper.lua").write_text(HELPER, encoding="utf-8")
    (root / "lib" / "uses-helper.lua").write_text(USES_HELPER, encoding="utf-8")
    (root / "modules" / "counting.lua").write_text(COUNTING_MODULE, encoding="utf-8")
    (root / "modules" / "echo.lua").write_text(ECHO_MODULE, encoding="utf-8")


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AOLITE_MSG_LOG", raising=False)
    monkeypatch.delenv("AOLITE_PRINT_OUTPUT", raising=False)
    lay_out(tmp_path)
    return tmp_path


def run_spec(root: Path, name: str, text: str):
    (root / "spec" / name).write_text(textwrap.dedent(text), encoding="utf-8")
    res = run_file(f"spec/{name}")
    bad = [(r.name, r.line, r.message, r.expected, r.actual) for r in res.records if r.status != "pass"]
    assert not bad, bad
    return res


def test_aolite_api(project):
    res = run_spec(project, "aolite_spec.lua", AOLITE_SPEC)
    assert len(res.records) == 34
    assert "[talker] hello there" in res.output     # setPrintProcessOutput(true)


def test_aos_py_extras(project):
    res = run_spec(project, "extras_spec.lua", EXTRAS_SPEC)
    assert len(res.records) == 5


def test_each_file_gets_a_fresh_node(project):
    spec = 'local a = require("aolite") it("spawns p", function() a.spawnProcess("p", nil) end)\n'
    run_spec(project, "one_spec.lua", spec)
    run_spec(project, "two_spec.lua", spec)        # no "already exists"


# -- the same from Python ------------------------------------------------------------------------------

def test_python_api(project):
    with AosNode() as node:
        assert node.spawnProcess("Process1", "process-source") == "Process1"
        node.spawn_process("sender")
        sent = node.send({"From": "sender", "Target": "Process1", "Action": "Ping", "Tags": {"Color": "red"}})
        assert sent["Id"] == "sender#1" and sent["Color"] == "red" and sent["Tags"]["Action"] == "Ping"
        pong = node.get_last_msg("sender")
        assert pong["Action"] == "Pong" and pong["From"] == "Process1"
        assert node.get_last_msg("sender", {"Action": "Po.*"}) == pong
        assert node.get_last_msg("sender", lambda m: m["From"] == "nobody") is None
        assert node.get_msg_by_id(pong["Id"]) == pong
        assert [m["Action"] for m in node.getAllMsgs("Process1")] == ["Ping"]
        assert node.get_msgs({"Action": "Pong"}) == [pong]
        assert node.eval("Process1", "{ 1, 2, { a = 'b' } }") == [1, 2, {"a": "b"}]
        assert node.eval("Process1", "nil") is None
        with pytest.raises(SimError, match="Error in evaluation"):
            node.eval("Process1", "error('x')")
        node.set_auto_schedule(False)
        queued = node.queue({"From": "sender", "Target": "Process1", "Action": "Ping"})
        assert [m["Id"] for m in node.list_queue_messages("Process1")] == [queued["Id"]]
        assert node.run_scheduler() == 2
        node.set_auto_schedule(True)
        assert "Process loaded with ID: Process1" in node.output("Process1")
        node.clear_all_processes()
        assert node.processes() == [] and node.get_all_msgs("Process1") is None


def test_python_api_message_log_and_time(project):
    with AosNode(timestamp=5000) as node:
        node.set_message_log(project / "log.jsonl")
        node.spawn_process("p", "process-source")
        node.spawn_process("s")
        node.send({"From": "s", "Target": "p", "Action": "Ping"})
        lines = [json.loads(x) for x in (project / "log.jsonl").read_text().splitlines()]
        assert [m["Id"] for m in lines] == ["s#1", "p#1"]
        assert {m["Timestamp"] for m in lines} == {5000}
        node.set_block_height(9)
        node.advance_time(1000)
        assert node.send({"From": "s", "Target": "p", "Action": "Ping"})["Block-Height"] == 9
        assert node.get_last_msg("p")["Timestamp"] == 6000


def test_matches_spec_follows_aos():
    msg = {"Action": "Credit-Notice", "Quantity": "100", "From": "tok", "Empty": ""}
    assert matches_spec(msg, None)
    assert matches_spec(msg, "Credit-Notice") and not matches_spec(msg, "Debit-Notice")
    assert matches_spec(msg, {"Action": "credit-notice"})           # aos compares text case-insensitively
    assert matches_spec(msg, {"Action": "Credit%-.*", "Quantity": "_"})
    assert matches_spec(msg, {"From": ["x", "tok"]})
    assert matches_spec(msg, {"Quantity": lambda v, m: int(v) > 50})
    assert matches_spec(msg, {"Empty": "_"})                        # "" is present (truthy in Lua)
    assert not matches_spec(msg, {"Missing": "_"})
    assert not matches_spec(msg, {"Action": "Credit"})
