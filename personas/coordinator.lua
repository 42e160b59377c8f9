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
--                    {{id, keywords, examples, nearest, matched, matched_weights, base, bonus, fits,
--                      pregnancy_preferred}, ...}
--                    (bonus: what the persona's own score() hook added, see docs/personas.md;
--                     fits: the patient is within the persona's audience)
--   turn.entry       the persona that opens consultations (the health advisor)
-- and expects {specialist = id, top = {ids}, emergency = bool, flags = {ids}, rule = "..."}.
--
-- Engine functions (read-only):
--   consilium.search(text)     -> {{id, keywords, examples, nearest, matched, matched_weights}, ...}
--                                 raw signals
--                                 for any text (turn.candidates already holds them for this turn)
--   consilium.red_flags(text)  -> {{id, emergency, route_to, owner, message}, ...}
--   consilium.exists(id)       -> true when the panel has that persona
--   consilium.persona(id)      -> {id, group, entry, audience = {min_age_years?, max_age_years?, sexes, pregnancy}}
--   consilium.personas()       -> every persona id
--
-- Everything below is policy: change the weights and rules here, then run
-- `consilium persona test` and `consilium route` (see docs/personas.md) to see the effect.

-- How the index's signals combine into one score.
local W_KEYWORDS = 1.0   -- IDF-weighted keywords and lay synonyms found in the text...
local KW_SAT = 6.0       -- ...with diminishing returns: k -> KW_SAT * log(1 + k / KW_SAT), so a
                         -- pile of synonyms for one complaint does not outweigh several complaints
local W_EXAMPLES = 0.45  -- BM25 of the text against all the persona's example phrasings
local W_NEAREST = 4.0    -- cosine similarity to the single closest example
local W_OWN_FLAG = 3.0   -- a persona whose own (non-emergency) warning sign matched the message

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

-- Symptom lists: a message that lists several complaints ("headaches, blurred vision, a stiff
-- neck and acid reflux") is better explained by the specialist who accounts for most of them
-- than by the one with the single strongest word. The message is cut into clauses; each clause
-- is scored on its own, and a persona earns log(1 + 9 * share) for it, where share is its score
-- relative to the clause's best (1 for the best, 0 when it does not explain the clause).
local W_COVERAGE = 2.0       -- weight of the clause evidence
local COVER_FLOOR = 0.1      -- sets the curve: the clause's best earns log(1 / COVER_FLOOR)
local CLAUSE_MIN = 3.0       -- a clause whose best score is below this says nothing specific...
local CLAUSE_FULL = 8.0      -- ...and one whose best reaches this counts fully (linear between)
local MAX_CLAUSES = 12

-- Keywords counted once. The index scores every matched keyword of a persona, so one phrase can
-- count several times: "acid reflux" also contains the keyword "reflux", and "fit", "fits" and
-- "fitting" are the same word once stemmed. Here a phrase counts once, as its longest keyword:
-- matched keywords are grouped by their stems, and a group that lies inside a longer matched
-- group, or repeats a group, is taken off again.

-- The engine's light English stemmer (plural, -ing, -ed), for grouping keyword variants.
local function stem(w)
  if w:find("[\128-\255]") or #w <= 3 then return w end
  local function ends(suf) return #w > #suf and w:sub(-#suf) == suf end
  local function undouble(x)
    local a, b = x:sub(-1), x:sub(-2, -2)
    if #x >= 2 and a == b and a ~= "l" and a ~= "s" then return x:sub(1, -2) end
    return x
  end
  if ends("ies") and #w > 4 then return w:sub(1, -4) .. "y" end
  if ends("sses") then return w:sub(1, -3) end
  if ends("ing") and #w > 5 then return undouble(w:sub(1, -4)) end
  if ends("ed") and #w > 4 then return undouble(w:sub(1, -3)) end
  if ends("s") and not ends("ss") and not ends("us") and not ends("is") and #w > 3 then return w:sub(1, -2) end
  return w
end

local function stem_key(kw)
  local out = {}
  for w in kw:gmatch("%S+") do out[#out + 1] = stem(w) end
  return table.concat(out, " ")
end

local function inside(small, big)
  return small ~= big and (" " .. big .. " "):find(" " .. small .. " ", 1, true) ~= nil
end

local weight_cache = {}
local function search_weight(id, kw)
  local key = id .. "\0" .. kw
  if weight_cache[key] == nil then
    local w = 0
    for _, h in ipairs(consilium.search(kw)) do if h.id == id then w = h.keywords end end
    weight_cache[key] = w
  end
  return weight_cache[key]
end

-- The hit's keyword score with every phrase counted once.
local function longest_keywords(h)
  local m = h.matched
  if m == nil or #m < 2 then return h.keywords end
  local groups, order = {}, {}
  local mw = h.matched_weights  -- the weight of each matched keyword (turn.candidates has them)
  for i, k in ipairs(m) do
    local sk = stem_key(k)
    if groups[sk] == nil then
      groups[sk] = {n = 0, rep = k, sum = 0}
      order[#order + 1] = sk
    end
    groups[sk].n = groups[sk].n + 1
    if mw then groups[sk].sum = groups[sk].sum + mw[i] end
  end
  if #order == #m then
    local any = false
    for _, a in ipairs(order) do for _, b in ipairs(order) do if inside(a, b) then any = true end end end
    if not any then return h.keywords end
  end
  -- Weight of one keyword of each group, shortest first: a search for it also finds the groups
  -- inside it.
  table.sort(order, function(a, b) return #a < #b end)
  local minus = 0
  for _, g in ipairs(order) do
    local G = groups[g]
    if mw then
      G.w = G.sum / G.n
    else
      local w = search_weight(h.id, G.rep)
      for _, g2 in ipairs(order) do
        if groups[g2].w and inside(g2, g) then w = w - groups[g2].n * groups[g2].w end
      end
      G.w = math.max(0, w / G.n)
    end
    minus = minus + (G.n - 1) * G.w
    for _, g2 in ipairs(order) do
      if inside(g, g2) then minus = minus + G.w; break end
    end
  end
  return math.max(0, h.keywords - minus)
end

-- Separators between listed complaints (sentence and list punctuation in several scripts, and
-- English list connectors).
local CLAUSE_BREAKS = {
  "%.", ",", ";", ":", "!", "%?", "\n", "\r", "،", "؛", "。", "，", "、", "；", "！", "？", "।",
}
local CLAUSE_WORDS = {
  "as well as", "along with", "together with", "in addition to", "in addition", "accompanied by",
  "additionally", "besides", "moreover", "followed by", "plus", "also",
}

local function clauses(text)
  local t = " " .. text:lower() .. " "
  for _, b in ipairs(CLAUSE_BREAKS) do t = t:gsub(b, " | ") end
  for _, w in ipairs(CLAUSE_WORDS) do t = t:gsub("%f[%w]" .. w .. "%f[%W]", " | ") end
  local out = {}
  for part in t:gmatch("[^|]+") do
    if part:find("%S") and #out < MAX_CLAUSES then out[#out + 1] = part end
  end
  return out
end

-- For each informative clause, how well each persona explains it relative to the clause's best
-- (0..1). Returns the list of per-clause share tables (empty for a single clause).
local function clause_shares(turn)
  local parts = clauses(turn.text)
  local out = {}
  if #parts < 2 then return out end
  for _, part in ipairs(parts) do
    local best, hits = 0, consilium.search(part)
    for _, h in ipairs(hits) do
      h.s = W_KEYWORDS * longest_keywords(h) + W_EXAMPLES * h.examples + W_NEAREST * h.nearest
      -- The advisor matches the non-specific parts ("not sure what it is"): not a specialty.
      if h.id == turn.entry then h.s = 0 end
      if h.s > best then best = h.s end
    end
    if best >= CLAUSE_MIN then
      local share = {[0] = math.min(1, (best - CLAUSE_MIN) / (CLAUSE_FULL - CLAUSE_MIN))}
      for _, h in ipairs(hits) do share[h.id] = h.s / best end
      out[#out + 1] = share
    end
  end
  return out
end

-- How completely a persona accounts for the listed complaints: each clause adds up to
-- log(1 / COVER_FLOOR) (times the clause's weight) when the persona is its best match, nothing
-- when the persona does not explain it.
local function coverage(shares, id)
  local c = 0
  for _, share in ipairs(shares) do
    c = c + share[0] * math.log(1 + (1 / COVER_FLOOR - 1) * (share[id] or 0))
  end
  return c
end

local function scored_candidates(turn)
  local out = {}
  local shares = clause_shares(turn)
  if #shares < 2 then shares = {} end
  for _, h in ipairs(turn.candidates) do
    -- The keywords of the whole message, with every phrase counted once.
    local kw = KW_SAT * math.log(1 + longest_keywords(h) / KW_SAT)
    local base = W_KEYWORDS * kw + W_EXAMPLES * h.examples + W_NEAREST * h.nearest + h.bonus
    local s = base + W_COVERAGE * coverage(shares, h.id)
    local fit = 1
    if not h.fits then fit = fit * AUDIENCE_MISFIT end
    if turn.profile.pregnant and h.pregnancy_preferred then fit = fit * 1.3 end
    out[#out + 1] = {id = h.id, score = s * fit, base = base * fit}
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
  -- A specialty's own warning sign (urgent, not an emergency) says the message is about that
  -- specialty: its owner gets a bonus.
  local owned = {}
  for _, f in ipairs(flags) do
    if not f.emergency and f.owner ~= "" then owned[f.owner] = true end
  end
  if next(owned) ~= nil then
    for _, c in ipairs(cands) do if owned[c.id] then c.score = c.score + W_OWN_FLAG end end
    table.sort(cands, function(a, b)
      if a.score ~= b.score then return a.score > b.score end
      return a.id < b.id
    end)
  end
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
  local clear = false
  for _, c in ipairs(cands) do if c.base >= MIN_SCORE then clear = true end end
  if best ~= nil and clear then return decision(best.id, "lexical") end

  -- 5. Nothing specific: the health advisor takes the history.
  return decision(turn.entry, "entry")
end
