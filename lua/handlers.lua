--
-- .handlers: the ordered handler list every message is matched against
-- (module version 0.0.5, aos 2.0.4 semantics).
--
-- An entry is { name, pattern, handle, maxRuns }. A pattern's verdict decides:
-- true / "break" / a negative number = run and stop, "continue" / a positive
-- number = run and go on, false / 0 / any other string = skip.
--
local handlers = { _version = "0.0.5" }

local utils = require(".utils")
local errorsite = require(".errorsite")

-- the positions aos 2.0.4 reports for these errors
local raiseInvalidArgs = errorsite(".handlers", 113)
local raisePatternResult = errorsite(".handlers", 667)
local raiseHandlerError = errorsite(".handlers", 723)

handlers.utils = require(".handlers-utils")
-- A reload keeps the live list and the suspended coroutines.
handlers.list = (Handlers and Handlers.list) or {}
handlers.coroutines = (Handlers and Handlers.coroutines) or {}
handlers.onceNonce = 0

local function findIndexByProp(array, prop, value)
  for index, object in ipairs(array) do
    if object[prop] == value then
      return index
    end
  end
  return nil
end

local INVALID_ARGS = 'Invalid arguments given. Expected: \n'
  .. '\tname : string, '
  .. '\tpattern : Action : string | MsgMatch : table,\n'
  .. '\t\tfunction(msg: Message) : {-1 = break, 0 = skip, 1 = continue},\n'
  .. '\thandle(msg : Message) : void) | Resolver,\n'
  .. '\tMaxRuns? : number | "inf" | nil'

local function checkArgs(name, pattern, handle, maxRuns)
  local tp = type(pattern)
  local th = type(handle)
  if type(name) ~= "string"
    or (tp ~= "function" and tp ~= "table" and tp ~= "string")
    or (th ~= "function" and th ~= "table")
    or (maxRuns ~= nil and maxRuns ~= "inf" and type(maxRuns) ~= "number") then
    raiseInvalidArgs(INVALID_ARGS)
  end
end

-- Resolvers are memoised per handle (weak keys): re-adding the same function
-- on every message, as the process does for _eval and _default, is cheap.
local resolvers = setmetatable({}, { __mode = "k" })

--- Turn a handler function or a resolver table ({[spec] = fn}) into one function.
function handlers.generateResolver(resolveSpec)
  local cached = resolvers[resolveSpec]
  if cached then return cached end
  local resolver = function(msg)
    if type(resolveSpec) == "function" then
      return resolveSpec(msg)
    end
    for matchSpec, func in pairs(resolveSpec) do
      if utils.matchesSpec(msg, matchSpec) then
        return func(msg)
      end
    end
  end
  if type(resolveSpec) == "function" or type(resolveSpec) == "table" then
    resolvers[resolveSpec] = resolver
  end
  return resolver
end

-- (name, handle) is shorthand for (name, name, handle): the Action pattern.
local function unpackArgs(n, a, b, c, d)
  if n == 2 then
    return a, a, b, nil
  end
  return a, b, c, d
end

local function upsert(atFront, n, ...)
  local name, pattern, handle, maxRuns = unpackArgs(n, ...)
  checkArgs(name, pattern, handle, maxRuns)
  local resolver = handlers.generateResolver(handle)
  local idx = findIndexByProp(handlers.list, "name", name)
  if idx then
    local entry = handlers.list[idx]
    entry.pattern = pattern
    entry.handle = resolver
    entry.maxRuns = maxRuns
  else
    local entry = { pattern = pattern, handle = resolver, name = name, maxRuns = maxRuns }
    if atFront then
      table.insert(handlers.list, 1, entry)
    else
      table.insert(handlers.list, entry)
    end
  end
end

--- Add or update (in place) a handler; returns the length of the list.
function handlers.add(...)
  upsert(false, select("#", ...), ...)
  return #handlers.list
end

--- Same as add, returning nothing.
function handlers.append(...)
  upsert(false, select("#", ...), ...)
end

--- Add a new handler at the front of the list (an existing name is updated in place).
function handlers.prepend(...)
  upsert(true, select("#", ...), ...)
end

--- A handler that runs once, ahead of every other handler.
function handlers.once(...)
  local name, pattern, handle
  if select("#", ...) == 3 then
    name, pattern, handle = ...
  else
    name = "_once_" .. tostring(handlers.onceNonce)
    handlers.onceNonce = handlers.onceNonce + 1
    pattern, handle = ...
  end
  handlers.prepend(name, pattern, handle, 1)
end

local function anchored(handleName, offset)
  assert(type(handleName) == "string", "Handler name MUST be a string")
  local idx = findIndexByProp(handlers.list, "name", handleName)
  return {
    add = function(name, pattern, handle, maxRuns)
      checkArgs(name, pattern, handle, maxRuns)
      if idx then
        table.insert(handlers.list, idx + offset, {
          pattern = pattern, handle = handlers.generateResolver(handle), name = name, maxRuns = maxRuns,
        })
      end
    end,
  }
end

--- before(name).add(...): insert a handler just before `name`.
function handlers.before(handleName)
  return anchored(handleName, 0)
end

--- after(name).add(...): insert a handler just after `name`.
function handlers.after(handleName)
  return anchored(handleName, 1)
end

--- Remove the handler called `name` (an unknown name changes nothing).
function handlers.remove(name)
  assert(type(name) == "string", "name MUST be string")
  local idx = findIndexByProp(handlers.list, "name", name)
  if idx then
    table.remove(handlers.list, idx)
  end
end

--- Suspend the running handler until a message matching `pattern` arrives;
-- returns that message.
function handlers.receive(pattern)
  local self = coroutine.running()
  handlers.once(pattern, function(msg)
    local _, ok, err = coroutine.resume(self, msg)
    if not ok then
      error(err)
    end
  end)
  return coroutine.yield(pattern)
end

--- Run the handler chain for one message.
function handlers.evaluate(msg, env)
  assert(type(msg) == "table", "msg is not valid")
  assert(type(env) == "table", "env is not valid")
  local handled = false
  for _, o in ipairs(handlers.list) do
    if o.name ~= "_default" then
      local match = utils.matchesSpec(msg, o.pattern)
      local tm = type(match)
      if tm ~= "number" and tm ~= "string" and tm ~= "boolean" then
        raisePatternResult("Pattern result is not valid, it MUST be string, number, or boolean")
      end
      if tm == "boolean" then
        match = match and -1 or 0
      elseif tm == "string" then
        if match == "continue" then
          match = 1
        elseif match == "break" then
          match = -1
        else
          match = 0
        end
      end
      if match ~= 0 then
        if match < 0 then handled = true end
        local ok, err = pcall(o.handle, msg, env)
        if not ok then
          raiseHandlerError(err)
        end
        if o.maxRuns ~= nil and o.maxRuns ~= "inf" then
          o.maxRuns = o.maxRuns - 1
          if o.maxRuns <= 0 then
            handlers.remove(o.name)
          end
        end
      end
      if match < 0 then
        return handled
      end
    end
  end
  local idx = findIndexByProp(handlers.list, "name", "_default")
  if idx then
    handlers.list[idx].handle(msg, env)
  end
  return handled
end

return handlers
