-- Option negotiation of one example milter (-D milter=NAME, -D port=PORT): with Postfix's offer it
-- asks for exactly its actions and leaves out exactly the steps it has no use for; offered too little,
-- it refuses the connection instead of going on without an action it needs.
dofile(conformance .. "/common.lua")

local ACTIONS = {
  SMFIF_ADDHDRS, SMFIF_CHGBODY, SMFIF_ADDRCPT, SMFIF_DELRCPT, SMFIF_CHGHDRS, SMFIF_QUARANTINE,
  SMFIF_CHGFROM, SMFIF_ADDRCPT_PAR, SMFIF_SETSYMLIST,
}
local OPTIONS = {
  SMFIP_NOCONNECT, SMFIP_NOHELO, SMFIP_NOMAIL, SMFIP_NORCPT, SMFIP_NOBODY, SMFIP_NOHDRS, SMFIP_NOEOH,
  SMFIP_NR_HDR, SMFIP_NOUNKNOWN, SMFIP_NODATA, SMFIP_SKIP, SMFIP_RCPT_REJ, SMFIP_NR_CONN, SMFIP_NR_HELO,
  SMFIP_NR_MAIL, SMFIP_NR_RCPT, SMFIP_NR_DATA, SMFIP_NR_UNKN, SMFIP_NR_EOH, SMFIP_NR_BODY, SMFIP_HDR_LEADSPC,
}
-- Every step but the ones a milter handles is negotiated away.
local AWAY = { SMFIP_NOCONNECT, SMFIP_NOHELO, SMFIP_NOMAIL, SMFIP_NOHDRS, SMFIP_NOEOH, SMFIP_NOUNKNOWN, SMFIP_NODATA }

local function with(list, ...)
  local all = { ... }
  for _, flag in ipairs(list) do
    table.insert(all, flag)
  end
  return all
end

local EXPECTED = {
  -- Header and body changes, the queue id at end of message (hence a macro list), the body step (and so
  -- SMFIR_SKIP may be sent), header values with their leading space.
  ["stamp-milter"] = {
    actions = { SMFIF_ADDHDRS, SMFIF_CHGBODY, SMFIF_SETSYMLIST },
    options = with(AWAY, SMFIP_NORCPT, SMFIP_SKIP, SMFIP_HDR_LEADSPC),
    required = SMFIF_CHGBODY,
  },
  -- No changes; only the RCPT step.
  ["reject-recipient-milter"] = {
    actions = {},
    options = with(AWAY, SMFIP_NOBODY, SMFIP_HDR_LEADSPC),
  },
  -- One header at end of message; no step at all.
  ["noop-milter"] = {
    actions = { SMFIF_ADDHDRS },
    options = with(AWAY, SMFIP_NORCPT, SMFIP_NOBODY, SMFIP_HDR_LEADSPC),
    required = SMFIF_ADDHDRS,
  },
}

local function contains(list, flag)
  for _, candidate in ipairs(list) do
    if candidate == flag then
      return true
    end
  end
  return false
end

run("negotiate " .. milter, function()
  local expected = EXPECTED[milter]
  check(expected ~= nil, "no expectations for " .. tostring(milter))
  local conn = connect_to(port)
  for _, flag in ipairs(ACTIONS) do
    check(mt.test_action(conn, flag) == contains(expected.actions, flag), string.format("action 0x%x", flag))
  end
  for _, flag in ipairs(OPTIONS) do
    check(mt.test_option(conn, flag) == contains(expected.options, flag), string.format("protocol flag 0x%x", flag))
  end
  mt.disconnect(conn)

  if expected.required ~= nil then
    local refused = mt.connect("inet:" .. port .. "@127.0.0.1", 25, 0.2)
    check(refused ~= nil, "cannot connect a second time")
    local result = mt.negotiate(refused, 6, 0x1fffff, 0x1ff - expected.required)
    check(result ~= nil, string.format("negotiated without action 0x%x", expected.required))
  end
end)
