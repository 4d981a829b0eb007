-- mt_headers.lua - one message through stripe-milter under miltertest; prints every
-- X-Stripe-* header the milter added, one "HDR <name>: <value>" line each (folds shown as
-- "\n\t"), for tests/milter/test_stripe_data.py to check. Environment:
--   MT_SOCKET   milter socket (unix:/path or inet:port@host)
--   MT_FROM     the From header value (also the envelope sender, in angle brackets)
-- Errors end the script with a message and a non-zero exit status.

local function env(name, default)
	local v = os.getenv(name)
	if v == nil then return default end
	return v
end

local conn = mt.connect(env("MT_SOCKET", ""), 40, 0.05)
if conn == nil then error("cannot connect to the milter") end
if mt.negotiate(conn, nil, nil, nil) ~= nil then error("negotiate failed") end
if mt.conninfo(conn, "client.example.net", "198.51.100.7") ~= nil then error("conninfo failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("connect not continued") end
local from = env("MT_FROM", "jenny@customer.test")
if mt.mailfrom(conn, "<" .. from .. ">") ~= nil then error("mailfrom failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("mailfrom not continued") end
if mt.rcptto(conn, "<support@example.test>") ~= nil then error("rcptto failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("rcpt not continued") end
if mt.header(conn, "From", from) ~= nil then error("header From failed") end
mt.header(conn, "Subject", "issue 11")
if mt.eom(conn) ~= nil then error("eom failed") end
if mt.getreply(conn) ~= SMFIR_ACCEPT then error("message not accepted") end

for _, name in ipairs({"Lookup", "Customer-Id", "Customer", "Name", "Subscription-Status",
    "Subscription", "Plan", "Charges", "Checkout", "Invoice", "Invoice-Url"}) do
	local v = mt.getheader(conn, "X-Stripe-" .. name, 0)
	if v ~= nil then
		mt.echo("HDR X-Stripe-" .. name .. ": " .. string.gsub(v, "\n\t", " "))
	end
end
mt.disconnect(conn)
