-- apm: the APM client (AO Package Manager, registry protocol v2). Every process
-- loads it at boot as the built-in client (version 2.0.6, as aos 2.0.4 ships);
-- the registry's @apm/apm package (packages/@apm/apm) loads it again as 2.1.0,
-- which is what `.load-blueprint apm` and apm.update() install.
--
--   apm.install("@sam/Llama-Herder")        -- sends APM.Download to apm.ID
--   apm.install("Llama-Herder@1.0.2")       -- vendor defaults to @apm
--   apm.uninstall(name), apm.search(q), apm.info(q), apm.update()
--   apm.registerVendor("@me"), apm.publish{...}, apm.transfer("@me/pkg", addr)
--
-- Loading it replaces the running client: it keeps that client's apm.ID and
-- apm.installed, registers the handlers APM.DownloadResponse,
-- APM.SearchResponse, APM.InfoResponse and APM.UpdateResponse (replacing the
-- ones of the same names), sets the globals apm and APM (an alias, so
-- APM.install(...) works as in older guides), json and base64, and returns apm.
-- It prints nothing itself: the blueprint announces "✅ APM client v… loaded".
--
-- Every response is accepted only from apm.ID with Result = "success"; package
-- warnings are shown; every vendor the naming rule allows is accepted; partial
-- versions are rejected; dependencies are installed at their stated version; a
-- missing Dependencies tag means none; versions compare numerically.

json = require("json")
base64 = require(".base64")

local DEFAULT_ID = "DKF8oXtPvh3q8s0fJFIeHFyHNM6oKrwMCUrPxEMroak"

local VERSION = "2.0.6"   -- the built-in client; the @apm/apm package sets its own

local previous = rawget(_G, "apm")
if type(previous) ~= "table" then previous = nil end

local apm = {}
apm.ID = DEFAULT_ID
if previous then
  local ok, id = pcall(function() return previous.registry and previous.registry() or previous.ID end)
  if ok and type(id) == "string" and id ~= "" then apm.ID = id end
end
apm._version = VERSION
apm.installed = previous and type(previous.installed) == "table" and previous.installed or {}

-------------------------------------------------------------------------------
-- helpers

-- The registry id: apm.ID, which follows the process's APM-Registry spawn tag
-- until someone sets it (the tag is read once the process environment exists).
local tagChecked = false

local function registryTag(process)
  -- aos turns Process.Tags into a name -> value map and keeps the list as TagArray
  for _, list in ipairs({ process.TagArray, process.Tags }) do
    if type(list) == "table" then
      for k, v in pairs(list) do
        local name, value = k, v
        if type(v) == "table" then name, value = v.name, v.value end
        if type(name) == "string" and name:lower() == "apm-registry" and type(value) == "string" and value ~= "" then
          return value
        end
      end
    end
  end
  return nil
end

local function registry()
  if not tagChecked and apm.ID == DEFAULT_ID then
    local env = type(ao) == "table" and ao.env or nil
    if type(env) == "table" and type(env.Process) == "table" then
      tagChecked = true
      apm.ID = registryTag(env.Process) or apm.ID
    end
  end
  return apm.ID
end
apm.registry = registry

local function hexdecode(hex)
  if #hex % 2 == 1 or hex:find("[^%x]") then
    error("package source is not valid hex")
  end
  return (hex:gsub("%x%x", function(pair) return string.char(tonumber(pair, 16)) end))
end

local function color(name)
  local c = rawget(_G, "Colors")
  return (type(c) == "table" and c[name]) or ""
end

local function send(msg)
  local s = rawget(_G, "Send")
  if type(s) == "function" then return s(msg) end
  return ao.send(msg)
end

-- Numeric (major, minor, patch) comparison; true when a is newer than b.
local function newer(a, b)
  if type(a) ~= "string" then return false end
  if type(b) ~= "string" then return true end
  local pa = { a:match("^(%d+)%.(%d+)%.(%d+)$") }
  local pb = { b:match("^(%d+)%.(%d+)%.(%d+)$") }
  if #pa < 3 or #pb < 3 then return a > b end
  for i = 1, 3 do
    local x, y = tonumber(pa[i]), tonumber(pb[i])
    if x ~= y then return x > y end
  end
  return false
end
apm._newer = newer

local function isVersion(v)
  return v:match("^%d+%.%d+%.%d+$") ~= nil or (#v == 43 and v:match("^[%w%-_]+$") ~= nil)
end

-- "@vendor/name@version" (vendor and version optional) -> vendor, name, version.
-- Raises "Invalid vendor name", "Invalid package name" or "Invalid version".
local function parse(query)
  if type(query) ~= "string" or query == "" then
    error("Invalid package name", 3)
  end
  local version
  local base, tail = query:match("^(.+)@([^@/]+)$")
  if base and base ~= "@" then
    if isVersion(tail) then
      version, query = tail, base
    elseif tail:match("^%d+$") or tail:match("^%d+%.%d*$") or tail:match("^%d+%.%d+%.$") then
      error("Invalid version", 3) -- a partial version is not silently dropped
    end
  end
  local vendor, name = query:match("^(@[^/]*)/(.*)$")
  if not vendor then
    vendor, name = "@apm", query
  end
  if not vendor:match("^@[a-z0-9%-]+$") then
    error("Invalid vendor name", 3)
  end
  if not name:match("^[%w%-_]+$") then
    error("Invalid package name", 3)
  end
  return vendor, name, version
end
apm._parse = parse

-- The package.loaded key of a package: the bare name for @apm packages.
local function loadedKey(fullname)
  return fullname:match("^@apm/(.+)$") or fullname
end

-- A tag value whatever the case its name arrived in (aos 2.0.4 normalises tag
-- names, so LatestClientVersion reads as Latestclientversion).
local function tag(msg, name)
  if msg[name] ~= nil then return msg[name] end
  local lname = name:lower()
  for k, v in pairs(msg) do
    if type(k) == "string" and k:lower() == lname then return v end
  end
  return nil
end

local function checkUpdate(msg)
  local latest = tag(msg, "LatestClientVersion")
  if latest and newer(latest, apm._version) then
    print("⚠️ APM update available v:" .. latest .. " run 'apm.update()'")
  end
end

-- Runs a response handler; a failure is printed and reported to the sender.
local function guarded(fn)
  return function(msg)
    local ok, err = pcall(fn, msg)
    if not ok then
      err = tostring(err)
      print(tostring(msg.Action) .. " - " .. err)
      send({ Target = msg.From, Data = err:match(":%d+: (.+)") or err, Result = "error" })
    end
  end
end

-- A response handler that runs fn only for a successful reply from the
-- registry; any other reply is printed and ignored: "Attempt to <verb> from
-- illegal source", or "<failed>: <msg[field]>" when the registry reports a failure.
local function fromRegistry(verb, failed, field, fn)
  return function(msg)
    local failure = failed .. ": " .. tostring(msg[field])
    if msg.From ~= registry() then
      print("Attempt to " .. verb .. " from illegal source")
    elseif msg.Result ~= "success" then
      print(failure)
    else
      return fn(msg)
    end
  end
end

-- Package or client source compiled in the global environment.
local function compile(source, chunkname)
  local chunk, err = load(source, chunkname, "t", _G)
  if not chunk then
    error("Error compiling load function: " .. tostring(err))
  end
  return chunk
end

local function decodeJSON(text, what)
  if text == nil or text == "" then return nil end
  if type(text) == "table" then return text end
  local ok, value = pcall(json.decode, text)
  if not ok then error("invalid " .. what .. " JSON: " .. tostring(value)) end
  return value
end

-------------------------------------------------------------------------------
-- response handlers

local function onDownload(msg)
  local name, version = msg.Name, msg.Version
  if type(name) ~= "string" or type(msg.Data) ~= "string" then
    error("download response without Name or Data")
  end
  local source = hexdecode(msg.Data)
  local warnings = decodeJSON(msg.Warnings, "Warnings")
  if type(warnings) == "table" then
    if warnings.modifiesGlobalState or warnings.ModifiesGlobalState then
      print("⚠️ Package modifies global state")
    end
    local note = warnings.installMessage or warnings.Message
    if type(note) == "string" and note ~= "" then
      print("⚠️ " .. note)
    end
  end

  local key = loadedKey(name)
  local module = compile(source, "=" .. name)()
  if module == nil then module = true end
  package.loaded[key] = module
  apm.installed[name] = version

  local deps = decodeJSON(msg.Dependencies, "Dependencies")
  if type(deps) == "table" then
    local names = {}
    for dep in pairs(deps) do names[#names + 1] = dep end
    table.sort(names)
    for _, dep in ipairs(names) do
      local want = type(deps[dep]) == "table" and deps[dep].version or nil
      if not (want and apm.installed[dep] == want) then
        print("ℹ️ Installing dependency " .. dep .. "@" .. tostring(want or "latest"))
        if type(want) == "string" and isVersion(want) then
          apm.install(dep .. "@" .. want)
        else
          apm.install(dep)
        end
      end
    end
  end

  print("✅ Downloaded " .. name .. "@" .. tostring(version))
  checkUpdate(msg)
end

local function onSearch(msg)
  local res = decodeJSON(msg.Data, "search result") or {}
  if #res == 0 then
    print("No packages found")
    return
  end
  local lines = { "" }
  for _, pkg in ipairs(res) do
    lines[#lines + 1] = tostring(pkg.Vendor) .. "/" .. tostring(pkg.Name) .. " | " .. tostring(pkg.Description or "")
  end
  print(table.concat(lines, "\n") .. "\n")
  checkUpdate(msg)
end

local function onInfo(msg)
  local res = decodeJSON(msg.Data, "info")
  if type(res) ~= "table" then
    print("No info found")
    return
  end
  local g, r = color("green"), color("reset")
  local function field(v) return g .. tostring(v == nil and "" or v) .. r end
  print("📦 " .. field(tostring(res.Vendor) .. "/" .. tostring(res.Name)))
  print("📄 Description    : " .. field(res.Description))
  print("🔖 Latest Version : " .. field(res.Version))
  print("📥 Installs       : " .. field(res.TotalInstalls))
  print("🔗 APM Url        : " .. field("https://apm.betteridea.dev/pkg?id=" .. tostring(res.PkgID)))
  print("🔗 Repository Url : " .. field(res.Repository))
  checkUpdate(msg)
end

local function onUpdate(msg)
  if type(msg.Data) ~= "string" then error("update response without Data") end
  local result = compile(hexdecode(msg.Data), "=@apm/apm")()
  local client = type(result) == "table" and result or rawget(_G, "apm")
  if type(client) == "table" then
    client._version = msg.Version or client._version
    _G.apm = client
    _G.APM = client
    package.loaded["apm"] = client
  end
  print("✅ Updated APM to v:" .. tostring(msg.Version))
end

for _, h in ipairs({
  { "APM.DownloadResponse", fromRegistry("download", "Download failed", "Name", onDownload) },
  { "APM.SearchResponse", fromRegistry("search", "Search failed", "Data", onSearch) },
  { "APM.InfoResponse", fromRegistry("get info", "Info failed", "Data", onInfo) },
  { "APM.UpdateResponse", fromRegistry("update", "Update failed", "Data", onUpdate) },
}) do
  local matches = Handlers.utils.hasMatchingTag("Action", h[1])
  -- resolving the registry here settles apm.ID before any Eval of the message runs
  Handlers.add(h[1], function(msg)
    registry()
    return matches(msg)
  end, guarded(h[2]))
end

-------------------------------------------------------------------------------
-- commands

function apm.install(query)
  local vendor, name, version = parse(query)
  local full = vendor .. "/" .. name
  if version and apm.installed[full] == version then
    return "✅ Package " .. full .. " already installed"
  end
  if version then full = full .. "@" .. version end
  send({ Target = registry(), Action = "APM.Download", Data = full })
  return "📦 Download requested for " .. full
end

function apm.uninstall(query)
  local vendor, name = parse(query)
  local full = vendor .. "/" .. name
  if not apm.installed[full] then
    error("Package not installed", 2)
  end
  apm.installed[full] = nil
  package.loaded[loadedKey(full)] = nil
  return "🗑️ Uninstalled " .. full
end

-- Sends a Search or Info query; a missing query is the caller's error.
local function ask(action, what, query)
  if type(query) ~= "string" or query == "" then
    error("No " .. what .. " query provided", 3)
  end
  send({ Target = registry(), Action = action, Data = query })
end

function apm.search(query)
  ask("APM.Search", "search", query)
  return "🔍 Search requested for " .. query
end

function apm.info(query)
  ask("APM.Info", "info", query)
  return "📦 Info requested for " .. query
end

function apm.update()
  send({ Target = registry(), Action = "APM.Update" })
  return "📦 Update requested"
end

-- Publishing from a process: the process is the package owner (the registry
-- takes msg.From). The registry answers with a plain message (Result and Data,
-- no Action), which lands in the Inbox and is announced as "New Message From".

function apm.registerVendor(vendor)
  if type(vendor) ~= "string" or vendor == "" then
    error("Invalid vendor name", 2)
  end
  if vendor:sub(1, 1) ~= "@" then vendor = "@" .. vendor end
  if not vendor:match("^@[a-z0-9%-]+$") then
    error("Invalid vendor name", 2)
  end
  send({ Target = registry(), Action = "APM.RegisterVendor", Data = vendor })
  return "📤 Vendor registration requested for " .. vendor
end

local function field(spec, name)
  local v = spec[name]
  if v == nil then v = spec[name:sub(1, 1):upper() .. name:sub(2)] end
  return v
end

local function jsonField(value, default)
  if value == nil then return default end
  if type(value) == "string" then return value end
  if type(value) == "table" and next(value) == nil then return default end
  return json.encode(value)
end

-- apm.publish{ vendor = "@me", name = "pkg", version = "1.0.0", source = "return {}",
--   readme = "", description = "", dependencies = { ["@a/b"] = { version = "1.0.0" } },
--   warnings = { modifiesGlobalState = false, installMessage = "" }, keywords = {},
--   authors = { { name = "me" } }, repository = "", license = "MIT" }
-- (capitalised keys work too). The vendor defaults to @apm.
function apm.publish(spec)
  if type(spec) ~= "table" then
    error("apm.publish expects a table { name, vendor, version, source, ... }", 2)
  end
  local vendor = field(spec, "vendor") or "@apm"
  local name, version, source = field(spec, "name"), field(spec, "version"), field(spec, "source")
  if type(vendor) ~= "string" or not vendor:match("^@[a-z0-9%-]+$") then
    error("Invalid vendor name", 2)
  end
  if type(name) ~= "string" or not name:match("^[%w%-_]+$") then
    error("Invalid package name", 2)
  end
  if type(version) ~= "string" or not version:match("^%d+%.%d+%.%d+$") then
    error("Invalid version", 2)
  end
  if type(source) ~= "string" or source:match("^%s*$") then
    error("Missing package source", 2)
  end
  local readme = field(spec, "readme") or ""
  send({
    Target = registry(),
    Action = "APM.Publish",
    Name = name,
    Vendor = vendor,
    Version = version,
    Description = tostring(field(spec, "description") or ""),
    Keywords = jsonField(field(spec, "keywords"), "[]"),
    Repository = tostring(field(spec, "repository") or ""),
    Dependencies = jsonField(field(spec, "dependencies"), "{}"),
    Warnings = jsonField(field(spec, "warnings"), "{}"),
    Authors = jsonField(field(spec, "authors"), "[]"),
    License = tostring(field(spec, "license") or ""),
    Data = json.encode({ source = source, readme = tostring(readme) }),
  })
  return "📤 Publish requested for " .. vendor .. "/" .. name .. "@" .. version
end

function apm.transfer(query, recipient)
  local vendor, name = parse(query)
  if type(recipient) ~= "string" or not recipient:match("^[%w%-_]+$") or #recipient ~= 43 then
    error("Invalid recipient address", 2)
  end
  send({ Target = registry(), Action = "APM.Transfer", Vendor = vendor, Name = name, Recipient = recipient })
  return "📤 Transfer requested for " .. vendor .. "/" .. name .. " to " .. recipient
end

-- This client is now the process's apm; APM is the same table (the v1 name).
_G.apm = apm
_G.APM = apm

return apm
