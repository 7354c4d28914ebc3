-- A FIFO of bytes, the buffer type the crypto utilities pass around.
-- Queue() returns an object of closures: push, pop, size, getHead, getTail, reset.

local function Queue()
  local items = {}
  local head, tail = 0, 0 -- items popped so far / items pushed so far
  local q = {}

  function q.push(v)
    tail = tail + 1
    items[tail] = v
  end

  function q.pop()
    if head == tail then return nil end
    head = head + 1
    local v = items[head]
    items[head] = nil
    return v
  end

  function q.size() return tail - head end
  function q.getHead() return head end
  function q.getTail() return tail end

  function q.reset()
    items, head, tail = {}, 0, 0
  end

  return q
end

return Queue
