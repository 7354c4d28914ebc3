--[[
  apm_registry: the AO Package Manager registry (protocol v2) as an AO process.

  The node loads it with an Eval from the process owner: `ServiceConfig = { ... }` followed by this source.
  Loading it again keeps every package, vendor and counter (state lives in the globals below).

  State
    Packages : list of rows, one per published version (see `newRow`)
    Vendors  : vendor name -> owner address ("@apm" is always the registry owner's)

  Requests (Action tag) and replies, all to msg.From:
    APM.Update                  -> APM.UpdateResponse: the latest @apm/apm client, hex-encoded
    APM.Download  Data=@v/n[@ver|@PkgID] -> APM.DownloadResponse (counts Installs / TotalInstalls)
    APM.Info      Data=[@v/]n[@ver]      -> APM.InfoResponse, JSON of the row plus Versions
    APM.Search    Data=query             -> APM.SearchResponse, JSON list (latest row per package)
    APM.Popular                          -> APM.PopularResponse, top 50 by TotalInstalls
    APM.List                             -> APM.ListResponse, every package's latest row (aos-py addition)
    APM.VendorOrAddressPackages Data=@vendor or address -> APM.VendorPackagesResponse
    APM.Publish   tags Name, Vendor, Version, ... Data=JSON{source, readme} -> Result=success
    APM.RegisterVendor Data=name         -> Result=success
    APM.Transfer  tags Name, Vendor, Recipient -> Result=success
  A failed request answers {Result="error", Data=<reason>} with no Action tag.

  Compared with the reference registry: versions are ordered numerically, an explicit version or PkgID
  downloads exactly that row, a publish must be numerically newer than the latest and come from its owner,
  a new package needs its vendor registered to the publisher (@apm belongs to the registry owner), vendor
  names may contain hyphens, and malformed publishes are refused with a reason. Also ours: the publisher
  (Owner) is msg.From; re-publishing the latest version with the same source is a no-op success; a transfer
  moves every version; Popular groups by vendor/name; a vendor's owner re-registering it gets a success.

  ServiceConfig (optional): ApmOwner = the address owning @apm (default: this process's Owner, the node).
]]

ServiceConfig = ServiceConfig or {}
Packages = Packages or {}
Vendors = Vendors or {}

local json = require("json")

local CLIENT = "@apm/apm"
local POPULAR_LIMIT = 50

-------------------------------------------------------------------------------
-- helpers

local function log(text)
  print("[APM] " .. text)
end

-- The address owning the @apm vendor: the registry process's owner (the node), unless configured.
local function registryOwner()
  return ServiceConfig.ApmOwner or Owner or (ao.env and ao.env.Process and ao.env.Process.Owner)
end

local function vendorOwner(vendor)
  if vendor == "@apm" then return registryOwner() end
  return Vendors[vendor]
end

-- A request error: the message (without file:line) goes back to the sender.
local function fail(text)
  error(text, 0)
end

local function hexencode(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function isVersion(v)
  return type(v) == "string" and v:match("^%d+%.%d+%.%d+$") ~= nil
end

local function isPkgId(v)
  return type(v) == "string" and #v == 43 and v:match("^[%w%-_]+$") ~= nil
end

local function isVendor(v)
  return type(v) == "string" and v:match("^@[a-z0-9%-]+$") ~= nil
end

local function isName(v)
  return type(v) == "string" and v:match("^[%w%-_]+$") ~= nil
end

local function isAddress(v)
  return isPkgId(v)
end

-- Numeric (major, minor, patch) order; true when a is newer than b.
local function newer(a, b)
  local pa = { a:match("^(%d+)%.(%d+)%.(%d+)$") }
  local pb = { b:match("^(%d+)%.(%d+)%.(%d+)$") }
  for i = 1, 3 do
    local x, y = tonumber(pa[i]), tonumber(pb[i])
    if x ~= y then return x > y end
  end
  return false
end

-- "[@vendor/]name[@version|@PkgID]" -> vendor (or nil), name, version, pkgid.
local function parseQuery(query)
  if type(query) ~= "string" or query == "" then fail("Invalid package name") end
  local version, pkgid
  local base, tail = query:match("^(.+)@([^@/]+)$")
  if base and base ~= "@" then
    if isVersion(tail) then
      version, query = tail, base
    elseif isPkgId(tail) then
      pkgid, query = tail, base
    else
      fail("Invalid version")
    end
  end
  local vendor, name = query:match("^(@[^/]*)/(.*)$")
  if not vendor then
    if query:find("/", 1, true) or query:sub(1, 1) == "@" then fail("Invalid vendor name") end
    name = query
  elseif not isVendor(vendor) then
    fail("Invalid vendor name")
  end
  if not isName(name) then fail("Invalid package name") end
  return vendor, name, version, pkgid
end

-- All rows of a package; the latest (numerically highest version) is returned second.
local function rowsOf(vendor, name)
  local rows, latest = {}, nil
  for _, row in ipairs(Packages) do
    if row.Vendor == vendor and row.Name == name then
      rows[#rows + 1] = row
      if not latest or newer(row.Version, latest.Version) then latest = row end
    end
  end
  return rows, latest
end

-- All rows of a package and the one asked for: that version or PkgID, else the latest.
-- Fails with "Package not found" / "Version not found".
local function findRow(vendor, name, version, pkgid)
  local rows, row = rowsOf(vendor, name)
  if not row then fail("Package not found") end
  if version or pkgid then
    row = nil
    for _, r in ipairs(rows) do
      if (version and r.Version == version) or (pkgid and r.PkgID == pkgid) then row = r end
    end
    if not row then fail("Version not found") end
  end
  return rows, row
end

-- The latest row of every package, sorted by vendor/name.
local function latestRows()
  local byKey, keys = {}, {}
  for _, row in ipairs(Packages) do
    local key = row.Vendor .. "/" .. row.Name
    local best = byKey[key]
    if not best then keys[#keys + 1] = key end
    if not best or newer(row.Version, best.Version) then byKey[key] = row end
  end
  table.sort(keys)
  local out = {}
  for _, key in ipairs(keys) do out[#out + 1] = byKey[key] end
  return out
end

local function latestClient()
  local _, latest = rowsOf("@apm", "apm")
  return latest
end

-- Tags every success reply carries.
local function reply(msg, fields)
  local client = latestClient()
  fields.Target = msg.From
  fields.Result = "success"
  if client then fields.LatestClientVersion = client.Version end
  Send(fields)
end

local function decodeJSON(text, what, default)
  if text == nil or text == "" then return default, nil end
  local ok, value = pcall(json.decode, text)
  if not ok then fail("Invalid " .. what .. " JSON") end
  return value, text
end

-- A search / vendor list item.
local function summary(row, withRepository)
  local item = {
    Vendor = row.Vendor, Name = row.Name, Version = row.Version, Owner = row.Owner,
    Installs = row.Installs, TotalInstalls = row.TotalInstalls, Description = row.Description,
    Readme = row.Readme, PkgID = row.PkgID,
  }
  if withRepository then item.Repository = row.Repository end
  return item
end

-------------------------------------------------------------------------------
-- requests

local handlers = {}

handlers["APM.Update"] = function(msg)
  local client = latestClient()
  if not client then fail("Package not found") end
  log("APM.Update - " .. CLIENT .. "@" .. client.Version .. " by " .. tostring(msg.From))
  reply(msg, {
    Action = "APM.UpdateResponse", PkgID = client.PkgID, Name = CLIENT, Version = client.Version,
    Data = client.Source,
  })
end

handlers["APM.Download"] = function(msg)
  local query = msg.Data
  local vendor, name, version, pkgid = parseQuery(query)
  if not vendor then fail("Invalid vendor name") end -- the client always sends a vendor
  log("APM.Download - " .. query .. " by " .. tostring(msg.From))
  local rows, row = findRow(vendor, name, version, pkgid)
  row.Installs = row.Installs + 1
  for _, r in ipairs(rows) do r.TotalInstalls = r.TotalInstalls + 1 end
  reply(msg, {
    Action = "APM.DownloadResponse", PkgID = row.PkgID, Name = vendor .. "/" .. name, Version = row.Version,
    Data = row.Source, Warnings = row.Warnings, Dependencies = row.Dependencies,
  })
end

handlers["APM.Info"] = function(msg)
  local vendor, name, version, pkgid = parseQuery(msg.Data)
  vendor = vendor or "@apm"
  local rows, row = findRow(vendor, name, version, pkgid)
  table.sort(rows, function(a, b) return newer(a.Version, b.Version) end)
  local versions = {}
  for _, r in ipairs(rows) do
    versions[#versions + 1] = { Version = r.Version, PkgID = r.PkgID, Installs = r.Installs }
  end
  local info = {}
  for k, v in pairs(row) do info[k] = v end
  info.Versions = versions
  reply(msg, { Action = "APM.InfoResponse", Data = json.encode(info) })
end

handlers["APM.Search"] = function(msg)
  local query = msg.Data
  if type(query) ~= "string" or query:match("^%s*$") then fail("No search query provided") end
  query = query:lower()
  local vq, nq = query:match("^(@[^/]*)/(.*)$")
  local found = {}
  for _, row in ipairs(latestRows()) do
    local vendor, name = row.Vendor:lower(), row.Name:lower()
    local hit
    if vq then
      hit = vendor:find(vq, 1, true) and name:find(nq, 1, true)
    else
      hit = vendor:find(query, 1, true) or name:find(query, 1, true)
    end
    if hit then found[#found + 1] = summary(row) end
  end
  reply(msg, { Action = "APM.SearchResponse", Data = json.encode(found) })
end

-- Every package (its latest row), by vendor/name: what `aos apm list` shows (an aos-py addition).
handlers["APM.List"] = function(msg)
  local found = {}
  for _, row in ipairs(latestRows()) do
    local item = summary(row)
    item.Readme = nil
    found[#found + 1] = item
  end
  reply(msg, { Action = "APM.ListResponse", Data = json.encode(found) })
end

handlers["APM.Popular"] = function(msg)
  local rows = latestRows()
  table.sort(rows, function(a, b)
    if a.TotalInstalls ~= b.TotalInstalls then return a.TotalInstalls > b.TotalInstalls end
    return a.Vendor .. "/" .. a.Name < b.Vendor .. "/" .. b.Name
  end)
  local top = {}
  for i = 1, math.min(#rows, POPULAR_LIMIT) do top[i] = summary(rows[i], true) end
  reply(msg, { Action = "APM.PopularResponse", Data = json.encode(top) })
end

handlers["APM.VendorOrAddressPackages"] = function(msg)
  local query = msg.Data
  local byVendor = isVendor(query)
  if not byVendor and not isAddress(query) then fail("Invalid vendor name or address") end
  local found = {}
  for _, row in ipairs(latestRows()) do
    if (byVendor and row.Vendor == query) or (not byVendor and row.Owner == query) then
      found[#found + 1] = summary(row)
    end
  end
  reply(msg, { Action = "APM.VendorPackagesResponse", Data = json.encode(found) })
end

handlers["APM.Publish"] = function(msg)
  local publisher = msg.From
  local vendor, name, version = msg.Vendor, msg.Name, msg.Version
  if vendor == nil or vendor == "" then fail("Missing Vendor tag") end
  if name == nil or name == "" then fail("Missing Name tag") end
  if version == nil or version == "" then fail("Missing Version tag") end
  if not isVendor(vendor) then fail("Invalid vendor name: " .. tostring(vendor)) end
  if not isName(name) then fail("Invalid package name: " .. tostring(name)) end
  if not isVersion(version) then fail("Invalid version: " .. tostring(version) .. " (expected major.minor.patch)") end
  local full = vendor .. "/" .. name

  local data = type(msg.Data) == "table" and msg.Data or nil
  if not data then
    local ok, decoded = pcall(json.decode, msg.Data or "")
    if not ok or type(decoded) ~= "table" then fail("Invalid Data: expected JSON {source, readme}") end
    data = decoded
  end
  if type(data.source) ~= "string" or data.source:match("^%s*$") then fail("Missing source in Data") end
  if data.readme ~= nil and type(data.readme) ~= "string" then fail("Invalid readme in Data: expected a string") end

  local deps, depsText = decodeJSON(msg.Dependencies, "Dependencies", {})
  if type(deps) ~= "table" then fail("Invalid Dependencies JSON") end
  for dep, spec in pairs(deps) do
    local dv, dn
    if type(dep) == "string" then dv, dn = dep:match("^(@[^/]+)/(.+)$") end
    if not (dv and isVendor(dv) and isName(dn)) then fail("Invalid dependency name: " .. tostring(dep)) end
    if type(spec) ~= "table" or (spec.version ~= nil and not isVersion(spec.version)) then
      fail("Invalid dependency version for " .. dep)
    end
  end
  local warnings, warningsText = decodeJSON(msg.Warnings, "Warnings", {})
  if type(warnings) ~= "table" then fail("Invalid Warnings JSON") end
  local keywords, keywordsText = decodeJSON(msg.Keywords, "Keywords", {})
  if type(keywords) ~= "table" then fail("Invalid Keywords JSON") end
  local authors, authorsText = decodeJSON(msg.Authors, "Authors", {})
  if type(authors) ~= "table" then fail("Invalid Authors JSON") end

  local _, latest = rowsOf(vendor, name)
  if latest then
    if latest.Owner ~= publisher then fail("Only the owner of " .. full .. " can publish new versions") end
    if not newer(version, latest.Version) then
      if version == latest.Version and latest.Source == hexencode(data.source) then
        -- publishing the same thing again (e.g. a node re-seeding its packages) changes nothing
        reply(msg, { Data = "✅ " .. full .. "@" .. version .. " is already published" })
        return
      end
      fail("Version " .. version .. " is not newer than the latest " .. full .. "@" .. latest.Version)
    end
  else
    local owner = vendorOwner(vendor)
    if owner == nil then
      fail("Vendor " .. vendor .. " is not registered (send APM.RegisterVendor first)")
    elseif owner ~= publisher then
      fail("Vendor " .. vendor .. " belongs to another owner")
    end
  end

  local total = latest and latest.TotalInstalls or 0
  Packages[#Packages + 1] = {
    ID = #Packages + 1,
    Vendor = vendor,
    Name = name,
    Version = version,
    Owner = publisher,
    Description = msg.Description or "",
    Keywords = keywordsText or "[]",
    Repository = msg.Repository or "",
    Dependencies = depsText or "{}",
    Warnings = warningsText or "{}",
    Authors = authorsText or "[]",
    License = msg.License or "",
    Source = hexencode(data.source),
    Readme = hexencode(data.readme or ""),
    PkgID = msg.Id,
    Installs = 0,
    TotalInstalls = total,
    Timestamp = msg.Timestamp,
  }
  log("APM.Publish - " .. full .. "@" .. version .. " by " .. tostring(publisher))
  reply(msg, { Data = "🎉 Published " .. full .. "@" .. version })
end

handlers["APM.RegisterVendor"] = function(msg)
  local vendor = msg.Data
  if type(vendor) ~= "string" or vendor == "" then fail("No vendor name provided") end
  if vendor:sub(1, 1) ~= "@" then vendor = "@" .. vendor end
  if not isVendor(vendor) then fail("Invalid vendor name") end
  local owner = vendorOwner(vendor)
  if owner ~= nil and owner ~= msg.From then fail("Vendor " .. vendor .. " is already registered") end
  if owner == msg.From then
    reply(msg, { Data = "✅ " .. vendor .. " is already registered to you" })
    return
  end
  Vendors[vendor] = msg.From
  log("APM.RegisterVendor - " .. vendor .. " by " .. tostring(msg.From))
  reply(msg, { Data = "🎉 Registered " .. vendor })
end

handlers["APM.Transfer"] = function(msg)
  local vendor, name, recipient = msg.Vendor, msg.Name, msg.Recipient
  if not isVendor(vendor) then fail("Invalid vendor name") end
  if not isName(name) then fail("Invalid package name") end
  if not isAddress(recipient) then fail("Invalid recipient address") end
  local full = vendor .. "/" .. name
  local rows, latest = rowsOf(vendor, name)
  if not latest then fail("Package not found") end
  if latest.Owner ~= msg.From then fail("Only the owner of " .. full .. " can transfer it") end
  -- ownership is the package's: every version moves (the reference moved only the latest row)
  for _, r in ipairs(rows) do r.Owner = recipient end
  log("APM.Transfer - " .. full .. " to " .. recipient .. " by " .. tostring(msg.From))
  reply(msg, { Data = "🎉 Transferred " .. full .. " to " .. recipient })
end

-------------------------------------------------------------------------------
-- registration (re-running this file replaces the handlers of the same names)

for action, fn in pairs(handlers) do
  Handlers.add(action, Handlers.utils.hasMatchingTag("Action", action), function(msg)
    local ok, err = pcall(fn, msg)
    if not ok then
      err = tostring(err)
      err = err:match("^[^\n]-:%d+: (.*)$") or err
      log(action .. " - " .. err)
      Send({ Target = msg.From, Result = "error", Data = err })
    end
  end)
end

return "[APM] registry loaded: " .. #Packages .. " package versions, " .. #latestRows() .. " packages"
