-- llama: aos-llama's Lua API over the host inference engine (`_llama`).
--
--   Llama = require("llama")           -- also sets the global Llama
--   Llama.load("/data/<model id>")     -- raises a clear error when the model cannot be loaded
--   Llama.setPrompt(text)              -- new context from text (with BOS); raises if it does not fit
--   Llama.next()                       -- next piece of text, or nil at end of generation
--   Llama.run(n)                       -- up to n pieces; stops early at end of generation
--   Llama.add(text)                    -- append text (with BOS, as aos-llama does) to the context
--   Llama.saveState() / Llama.loadState() / Llama.clearState()
--   Llama.info(), Llama.stop()
--   Llama.logLevel (5), Llama.logToStderr (true), Llama.log.<error|warn|info|debug> (lists),
--   Llama.onLog(level, text), Llama.onProgress(fraction)   -- replaceable
--
-- Differences from aos-llama (its bugs, fixed): a failed load or an overflowing prompt raises an error
-- instead of failing silently, and run(n) stops at end of generation instead of appending a NULL piece.

local host = require("_llama")

local Llama = {
  logLevel = 5,
  logToStderr = true,
  log = { error = {}, warn = {}, info = {}, debug = {} },
  -- most entries kept per log list (oldest dropped first)
  logLimit = 1000,
}

local LEVEL_NAMES = { [2] = "error", [3] = "warn", [4] = "info", [5] = "debug" }

function Llama.onLog(level, text)
  if level > (tonumber(Llama.logLevel) or 5) then return end
  local name = LEVEL_NAMES[level] or "debug"
  local list = Llama.log[name]
  if type(list) ~= "table" then
    list = {}
    Llama.log[name] = list
  end
  list[#list + 1] = text
  local limit = tonumber(Llama.logLimit)
  if limit and #list > limit then table.remove(list, 1) end
  if Llama.logToStderr and io and io.stderr then
    io.stderr:write("[" .. name .. "] " .. tostring(text) .. "\n")
  end
end

function Llama.onProgress(fraction)
  if Llama.logToStderr and io and io.stderr then io.stderr:write(".") end
end

-- The host calls these; they look Llama.onLog / Llama.onProgress up at call time so users can replace them.
host.set_callbacks(
  function(level, text) return Llama.onLog(level, text) end,
  function(fraction) return Llama.onProgress(fraction) end
)
host.set_log_level(5) -- the host reports everything; Llama.onLog filters by Llama.logLevel

-- Host errors surface at the caller's line, with the text the host gave (no position inside this file).
local function call(fn, ...)
  local ok, res = pcall(fn, ...)
  if not ok then
    local text = tostring(res):gsub('^%[string "llama"%]:%d+: ', "")
    error(text, 3)
  end
  return res
end

local function need_string(fname, value)
  if type(value) ~= "string" then
    error("Llama." .. fname .. ": expected a string, got " .. type(value), 3)
  end
end

function Llama.load(path)
  need_string("load(path)", path)
  call(host.load, path)
end

function Llama.setPrompt(text)
  need_string("setPrompt(text)", text)
  call(host.set_prompt, text)
end

function Llama.add(text)
  need_string("add(text)", text)
  call(host.add, text)
end

function Llama.next()
  return call(host.next)
end

function Llama.run(n)
  if math.type(n) ~= "integer" and not (type(n) == "number" and n == math.floor(n)) then
    error("Llama.run(n): n must be a whole number of tokens, got " .. tostring(n), 2)
  end
  if n < 0 then error("Llama.run(n): n must be >= 0, got " .. tostring(n), 2) end
  return call(host.run, math.tointeger(n) or n)
end

function Llama.stop()
  call(host.stop)
end

function Llama.info()
  return call(host.info)
end

function Llama.saveState()
  return call(host.save_state)
end

function Llama.loadState()
  return call(host.load_state)
end

function Llama.clearState()
  call(host.clear_state)
end

_G.Llama = Llama
return Llama
