-- coordinator.lua: decides, for every patient message, which specialist answers.
--
-- The engine calls route(turn) with
--   turn.text        the patient's message
--   turn.profile     {age_years?, sex?, pregnant}
--   turn.current     the specialist of the previous turn ("" on the first)
--   turn.pinned      a specialist the patient chose ("" for none)
--   turn.locale      the app's language tag ("" when unknown)
--   turn.turn_index  0 for the first message of the consultation
--   turn.previous    the patient's previous message ("" on the first)
--   turn.candidates  the routing index's best 20 candidates, best first:
--                    {{id, keywords, examples, nearest, matched, base, bonus, fits,
--                      pregnancy_preferred}, ...}
--                    (bonus: what the persona's own score() hook added, see docs/personas.md;
--                     fits: the patient is within the persona's audience)
--   turn.entry       the persona that opens consultations (the health advisor)
-- and expects {specialist = id, top = {ids}, emergency = bool, flags = {ids}, rule = "..."}.
--
-- Engine functions (read-only):
--   consilium.search(text)     -> {{id, keywords, examples, nearest, matched}, ...} raw signals
--                                 for any text (turn.candidates already holds them for this turn)
--   consilium.red_flags(text)  -> {{id, emergency, route_to, owner, message}, ...}
--   consilium.exists(id)       -> true when the panel has that persona
--   consilium.persona(id)      -> {id, group, entry, audience = {min_age_years?, max_age_years?, sexes, pregnancy}}
--   consilium.personas()       -> every persona id
--
-- Everything below is policy: change the weights and rules here, then run
-- `consilium persona test` and `consilium route` (see docs/personas.md) to see the effect.

-- How the index's signals combine into one score.
local W_KEYWORDS = 1.0   -- IDF-weighted keywords and lay synonyms found in the text
local W_EXAMPLES = 0.35  -- BM25 of the text against all the persona's example phrasings
local W_NEAREST = 4.0    -- cosine similarity to the single closest example

local MIN_SCORE = 5.0        -- below this nobody is a clear match: the advisor takes the history
local SWITCH_SCORE = 8.0     -- a follow-up hands over only to a clear match...
local KEEP_CURRENT = 1.5     -- ...that also beats the current specialist by this factor
local AUDIENCE_MISFIT = 0.2  -- a persona whose audience excludes the patient

-- Children: an adult specialty hands over to its paediatric counterpart.
local PEDIATRIC = {
  general_practice = "pediatrics", internal_medicine = "pediatrics", health_advisor = "pediatrics",
  cardiology = "pediatric_cardiology", cardiac_electrophysiology = "pediatric_cardiology",
  neurology = "pediatric_neurology",
  gastroenterology = "pediatric_gastroenterology", hepatology = "pediatric_gastroenterology",
  endocrinology = "pediatric_endocrinology", diabetology = "pediatric_endocrinology",
  psychiatry = "child_psychiatry", psychology = "child_psychiatry",
}
local NEWBORN_YEARS = 0.08   -- about the first month of life
local CHILD_YEARS = 18

local function exists(id)
  return id ~= nil and id ~= "" and consilium.exists(id)
end

-- Adult specialty -> paediatric one for children; pediatrics -> neonatology for newborns.
local function for_age(id, profile)
  local age = profile.age_years
  if age == nil then return id end
  if age < CHILD_YEARS and PEDIATRIC[id] and exists(PEDIATRIC[id]) then id = PEDIATRIC[id] end
  if age < NEWBORN_YEARS and id == "pediatrics" and exists("neonatology") then id = "neonatology" end
  return id
end

local function scored_candidates(turn)
  local out = {}
  for _, h in ipairs(turn.candidates) do
    local s = W_KEYWORDS * h.keywords + W_EXAMPLES * h.examples + W_NEAREST * h.nearest + h.bonus
    if not h.fits then s = s * AUDIENCE_MISFIT end
    if turn.profile.pregnant and h.pregnancy_preferred then s = s * 1.3 end
    out[#out + 1] = {id = h.id, score = s}
  end
  table.sort(out, function(a, b)
    if a.score ~= b.score then return a.score > b.score end
    return a.id < b.id
  end)
  return out
end

function route(turn)
  local flags = consilium.red_flags(turn.text)
  -- A short follow-up may complete a warning sign the previous message began ("it came on 20 min
  -- ago and now it's in my jaw"): flags that match the two together, but not the previous alone.
  if turn.previous and turn.previous ~= "" then
    local seen = {}
    for _, f in ipairs(flags) do seen[f.id] = true end
    for _, f in ipairs(consilium.red_flags(turn.previous)) do seen[f.id] = true end
    for _, f in ipairs(consilium.red_flags(turn.previous .. "\n" .. turn.text)) do
      if not seen[f.id] then flags[#flags + 1] = f end
    end
  end
  local flag_ids = {}
  for _, f in ipairs(flags) do flag_ids[#flag_ids + 1] = f.id end

  local cands = scored_candidates(turn)
  -- Which emergency decides where the consultation goes: a panel-wide flag first (emergency.yaml
  -- names who takes it), else the flag of the persona that matches the text best.
  local emergency, rank = nil, {}
  for i, c in ipairs(cands) do rank[c.id] = i end
  for _, f in ipairs(flags) do
    if f.emergency then
      local better = emergency == nil
        or (f.owner == "" and emergency.owner ~= "")
        or (f.owner ~= "" and emergency.owner ~= "" and (rank[f.owner] or 1000) < (rank[emergency.owner] or 1000))
      if better then emergency = f end
    end
  end
  local top, scores = {}, {}
  for i, c in ipairs(cands) do
    if i <= 3 then top[#top + 1] = for_age(c.id, turn.profile) end
    if i <= 8 then scores[c.id] = math.floor(c.score * 1000 + 0.5) / 1000 end
  end

  local function decision(specialist, rule, keep)
    if not keep then specialist = for_age(specialist, turn.profile) end
    if #top == 0 then top = {specialist} end
    return {
      specialist = specialist, top = top, emergency = emergency ~= nil, flags = flag_ids,
      emergency_message = emergency and emergency.message or nil, rule = rule, scores = scores,
    }
  end

  -- 1. The patient chose a specialist.
  if exists(turn.pinned) then return decision(turn.pinned, "pinned", true) end

  -- 2. An emergency goes to whoever the flag names (the emergency frame goes out first).
  if emergency ~= nil and exists(emergency.route_to) then
    return decision(emergency.route_to, "emergency:" .. emergency.id)
  end

  local best = cands[1]
  -- 3. A follow-up: keep the current specialist unless another is clearly better.
  if turn.current ~= "" and exists(turn.current) then
    local current_score = 0
    for _, c in ipairs(cands) do if c.id == turn.current then current_score = c.score end end
    if best == nil or best.id == turn.current or best.score < SWITCH_SCORE
       or best.score < current_score * KEEP_CURRENT then
      return decision(turn.current, "follow_up")
    end
    return decision(best.id, "handover")
  end

  -- 4. A clear match.
  if best ~= nil and best.score >= MIN_SCORE then return decision(best.id, "lexical") end

  -- 5. Nothing specific: the health advisor takes the history.
  return decision(turn.entry, "entry")
end
