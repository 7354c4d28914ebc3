--
-- .errorsite: raise an error as if from a given line of a given module.
--
-- aos 2.0.4 reports some errors at fixed positions of its own modules, e.g.
-- `[string ".handlers"]:723: [string "aos"]:1: boom` for every failing Eval.
-- This library is written independently, so its lines differ; raising those
-- errors from the same positions keeps the error texts identical to aos's for
-- programs and tests that compare them.
--
local cache = {}

--- errorsite(chunkname, line) -> function(value) that raises value from there.
return function(chunkname, line)
  local key = chunkname .. ":" .. line
  local f = cache[key]
  if not f then
    f = load(string.rep("\n", line - 1) .. "error((...), 1)", chunkname, "t")
    cache[key] = f
  end
  return f
end
