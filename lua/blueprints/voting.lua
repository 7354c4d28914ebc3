--[[
  voting blueprint: votes weighted by staked amount (from the staking blueprint, which uses token).

  Vote with tags Proposal (what is voted on), Side ("yay" or "nay") and Deadline (blocks from now, used when
  the proposal is first voted on). A finalization handler closes every proposal whose deadline has passed and
  records Results[proposal] = "passed" (more yay than nay) or "rejected". Each staker votes once per proposal.
]]
local bint = require('.bint')(256)
local json = require('json')

-- As in aos, it loads without staking and fails only when used; a note says what is missing.
local NEEDS_STAKERS = "voting needs Stakers: load the token and staking blueprints (.load-blueprint token, "
  .. ".load-blueprint staking)"
if Stakers == nil then
  print("Note: " .. NEEDS_STAKERS .. " before voting.")
end
Votes = Votes or {}
Results = Results or {}
DefaultVoteDeadline = DefaultVoteDeadline or 100

local function height(msg)
  return tonumber(msg['Block-Height']) or 0
end

Handlers.vote = function(msg)
  assert(Stakers, NEEDS_STAKERS)
  local staker = Stakers[msg.From]
  assert(staker and bint(staker.amount) > bint(0), "No staked tokens to vote with")
  local proposal = msg.Proposal
  assert(type(proposal) == "string" and proposal ~= "", "Proposal is required!")
  local side = msg.Side
  assert(side == "yay" or side == "nay", "Side must be yay or nay")
  assert(not Results[proposal], "Voting on " .. proposal .. " is closed")
  local entry = Votes[proposal]
  if not entry then
    entry = { yay = "0", nay = "0", voters = {},
      deadline = height(msg) + (tonumber(msg.Deadline) or DefaultVoteDeadline) }
    Votes[proposal] = entry
  end
  assert(not entry.voters[msg.From], "Already voted on " .. proposal)
  entry.voters[msg.From] = side
  entry[side] = tostring(bint(entry[side]) + bint(staker.amount))
  msg.reply({ Action = "Vote-Notice", Proposal = proposal, Side = side,
    Data = "Voted " .. side .. " on " .. proposal .. " with " .. staker.amount })
end

local function finalize(msg)
  local now = height(msg)
  for proposal, entry in pairs(Votes) do
    if now >= entry.deadline then
      Results[proposal] = bint(entry.yay) > bint(entry.nay) and "passed" or "rejected"
      print("Vote on " .. proposal .. " " .. Results[proposal] .. " (yay " .. entry.yay .. ", nay " .. entry.nay .. ")")
      Votes[proposal] = nil
    end
  end
end

Handlers.add("voting.vote", Handlers.utils.hasMatchingTag("Action", "Vote"), Handlers.vote)
Handlers.add("voting.votes", Handlers.utils.hasMatchingTag("Action", "Votes"), function(msg)
  msg.reply({ Action = "Votes", Data = json.encode({ open = Votes, results = Results }) })
end)
Handlers.prepend("voting.finalize", function() return "continue" end, finalize)
