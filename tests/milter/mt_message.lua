-- mt_message.lua - one message through stripe-milter under miltertest, described by the
-- environment (set by test_miltertest.py):
--   MT_SOCKET   milter socket (unix:/path or inet:port@host)
--   MT_IP       client address (default 198.51.100.7)
--   MT_AUTH     {auth_authen} at MAIL FROM (default none)
--   MT_ENVFROM  envelope sender (default <jenny@customer.test>)
--   MT_RCPT     recipient (default <support@example.test>)
--   MT_FROM     From header value ("" = no From header)
--   MT_FORGED   "yes": send forged prefix headers (several copies, case variants, folded)
--   MT_EXPECT   Lua pattern the added X-Stripe-Lookup must match
--   MT_STATUS   expected X-Stripe-Subscription-Status ("" = must not be added, "*" = any)
--   MT_ACTIONS  actions the MTA offers at negotiation (number; default: all)
--   MT_FROM2    a second From header
--   MT_AUTHRES  an Authentication-Results header value
--   MT_REPLY    expected end-of-message reply: "accept" (default), "tempfail", or "either"
--               (an accepted message must then pass every other check; an earlier step
--               tempfailed counts as tempfailed: the allocation-failure test)
--   MT_MANY     send this many forged X-Stripe-Lookup headers (alternating case)
-- Errors end the script with a message and a non-zero exit status.

local function env(name, default)
	local v = os.getenv(name)
	if v == nil then return default end
	return v
end

local either = env("MT_REPLY", "") == "either"

-- In "either" mode a step the milter tempfails ends the message as tempfailed.
local function step(what)
	local r = mt.getreply(conn)
	if r == SMFIR_CONTINUE then return end
	if either and (r == SMFIR_TEMPFAIL or r == SMFIR_REPLYCODE) then
		mt.echo("tempfailed at " .. what)
		mt.disconnect(conn)
		os.exit(0)
	end
	error(what .. " not continued")
end

conn = mt.connect(env("MT_SOCKET", ""), 40, 0.05)
if conn == nil then error("cannot connect to the milter") end

-- Postfix's defaults: protocol 6, every action, every step offered.
local actions = env("MT_ACTIONS", "")
if actions == "" then actions = nil else actions = tonumber(actions) end
-- miltertest 1.6.0 reads the fourth argument as the actions and the third as the steps,
-- the other way round from its manual (seen on the wire with strace).
if mt.negotiate(conn, nil, nil, actions) ~= nil then error("negotiate failed") end
if mt.conninfo(conn, "client.example.net", env("MT_IP", "198.51.100.7")) ~= nil then
	error("conninfo failed")
end
step("connect")

local auth = env("MT_AUTH", "")
if auth ~= "" then
	mt.macro(conn, SMFIC_MAIL, "{auth_authen}", auth)
end
if mt.mailfrom(conn, env("MT_ENVFROM", "<jenny@customer.test>")) ~= nil then error("mailfrom failed") end
step("mailfrom")
if mt.rcptto(conn, env("MT_RCPT", "<support@example.test>")) ~= nil then error("rcptto failed") end
step("rcpt")

local from = env("MT_FROM", "Jenny Rosen <jenny@customer.test>")
if from ~= "" then
	if mt.header(conn, "From", from) ~= nil then error("header From failed") end
end
local from2 = env("MT_FROM2", "")
if from2 ~= "" then mt.header(conn, "From", from2) end
local authres = env("MT_AUTHRES", "")
if authres ~= "" then mt.header(conn, "Authentication-Results", authres) end
mt.header(conn, "Subject", "miltertest")
local forged = env("MT_FORGED", "") == "yes"
if forged then
	mt.header(conn, "X-Stripe-Lookup", "found; cache=hit")
	mt.header(conn, "X-Stripe-Subscription-Status", "active")
	mt.header(conn, "x-stripe-subscription-status", "active")
	mt.header(conn, "X-STRIPE-CUSTOMER", "name=\"CEO\";\r\n\tdelinquent=no")
end
-- no mt.eoh(): the milter negotiates SMFIP_NOEOH, as Postfix sees it
local many = tonumber(env("MT_MANY", "0"))
for i = 1, many do
	mt.header(conn, (i % 2 == 0) and "X-Stripe-Lookup" or "x-stripe-lookup", "forged " .. i)
end
if mt.eom(conn) ~= nil then error("eom failed") end
local reply = mt.getreply(conn)
if env("MT_REPLY", "accept") == "tempfail" or
    (env("MT_REPLY", "accept") == "either" and reply ~= SMFIR_ACCEPT) then
	if reply ~= SMFIR_REPLYCODE and reply ~= SMFIR_TEMPFAIL then
		error("message not tempfailed")
	end
	mt.echo("tempfailed as expected")
	mt.disconnect(conn)
	return
end
if reply ~= SMFIR_ACCEPT then error("message not accepted") end

if forged and env("MT_ACTIONS", "") == "" then
	for _, h in ipairs({"X-Stripe-Lookup", "X-Stripe-Subscription-Status",
	    "x-stripe-subscription-status", "X-STRIPE-CUSTOMER"}) do
		if not mt.eom_check(conn, MT_HDRDELETE, h) then
			error("forged header " .. h .. " not deleted")
		end
	end
elseif many > 0 then
	if not mt.eom_check(conn, MT_HDRDELETE, "X-Stripe-Lookup") or
	    not mt.eom_check(conn, MT_HDRDELETE, "x-stripe-lookup") then
		error("forged copies not deleted")
	end
elseif mt.eom_check(conn, MT_HDRDELETE) then
	error("a header was deleted from a message without forged ones")
end

local lookup = mt.getheader(conn, "X-Stripe-Lookup", 0)
if lookup == nil then error("X-Stripe-Lookup not added") end
local want = env("MT_EXPECT", "^v=2; found;")
if not string.find(lookup, want) then
	error("X-Stripe-Lookup '" .. lookup .. "' does not match '" .. want .. "'")
end
mt.echo("X-Stripe-Lookup: " .. lookup)

local status = env("MT_STATUS", "")
local got = mt.getheader(conn, "X-Stripe-Subscription-Status", 0)
if status == "*" then
	-- not checked
elseif status == "" then
	if got ~= nil then error("unexpected X-Stripe-Subscription-Status: " .. got) end
elseif got ~= status then
	error("X-Stripe-Subscription-Status '" .. tostring(got) .. "', want '" .. status .. "'")
end

mt.disconnect(conn)
