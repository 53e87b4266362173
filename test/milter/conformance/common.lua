-- Helpers shared by the conformance scripts, loaded with
--   dofile(conformance .. "/common.lua")
-- where `-D conformance=DIR` names this directory. miltertest exits 1 without a word when a script
-- raises an error, so run() prints the reason first.
--
-- Every mt.* step below is left out when the filter negotiated it away (mt.test_option), because
-- miltertest refuses such a step ("negotiated SMFIP_NORCPT").

-- Fails the script with `message` unless `condition` holds.
function check(condition, message)
  if not condition then
    error(message, 0)
  end
end

-- mt functions return nil on success and an error text otherwise.
function must(what, result)
  if result ~= nil then
    error(what .. ": " .. tostring(result), 0)
  end
end

-- Checks the reply the filter gave to the last step.
function expect_reply(conn, expected, what)
  local reply = mt.getreply(conn)
  check(reply == expected, what .. ": expected reply '" .. string.char(expected) .. "', got '" .. string.char(reply) .. "'")
end

-- Runs `body`; on success prints "ok NAME", on failure "FAIL NAME: reason" and exits 1.
function run(name, body)
  local ok, reason = pcall(body)
  if not ok then
    mt.echo("FAIL " .. name .. ": " .. tostring(reason))
    error(reason, 0)
  end
  mt.echo("ok " .. name)
end

-- Connects to the milter on 127.0.0.1:`port` (25 tries, 0.2 s apart) and negotiates with Postfix's
-- offer. Note the argument order of this miltertest: version, protocol flags, actions.
function connect_to(port)
  local conn = mt.connect("inet:" .. port .. "@127.0.0.1", 25, 0.2)
  check(conn ~= nil, "cannot connect to the milter on port " .. port)
  must("negotiate", mt.negotiate(conn, 6, 0x1fffff, 0x1ff))
  return conn
end

-- The SMTP client's connection and HELO.
function greet(conn)
  if not mt.test_option(conn, SMFIP_NOCONNECT) then
    must("conninfo", mt.conninfo(conn, "client.test", "127.0.0.1"))
    expect_reply(conn, SMFIR_CONTINUE, "connect")
  end
  if not mt.test_option(conn, SMFIP_NOHELO) then
    must("helo", mt.helo(conn, "client.test"))
    expect_reply(conn, SMFIR_CONTINUE, "helo")
  end
end

-- MAIL, with the queue id as the `i` macro of the MAIL stage (sent even when MAIL itself is not).
function mail(conn, sender, queue_id)
  must("macro", mt.macro(conn, SMFIC_MAIL, "i", queue_id))
  if not mt.test_option(conn, SMFIP_NOMAIL) then
    must("mailfrom", mt.mailfrom(conn, sender))
    expect_reply(conn, SMFIR_CONTINUE, "mail")
  end
end

-- One RCPT; returns the filter's reply, or SMFIR_CONTINUE when the step was negotiated away.
function rcpt(conn, recipient)
  if mt.test_option(conn, SMFIP_NORCPT) then
    return SMFIR_CONTINUE
  end
  must("rcptto", mt.rcptto(conn, recipient))
  return mt.getreply(conn)
end

-- DATA, the headers (a list of {name, value}), end of headers and one body chunk.
function content(conn, headers, body)
  if not mt.test_option(conn, SMFIP_NODATA) then
    must("data", mt.data(conn))
    expect_reply(conn, SMFIR_CONTINUE, "data")
  end
  if not mt.test_option(conn, SMFIP_NOHDRS) then
    for _, header in ipairs(headers) do
      must("header " .. header[1], mt.header(conn, header[1], header[2]))
      expect_reply(conn, SMFIR_CONTINUE, "header " .. header[1])
    end
  end
  if not mt.test_option(conn, SMFIP_NOEOH) then
    must("eoh", mt.eoh(conn))
    expect_reply(conn, SMFIR_CONTINUE, "eoh")
  end
  if not mt.test_option(conn, SMFIP_NOBODY) then
    must("bodystring", mt.bodystring(conn, body))
    expect_reply(conn, SMFIR_CONTINUE, "body")
  end
end

-- Headers of the test messages; values carry their leading space, as Postfix sends them.
MESSAGE_HEADERS = {
  { "From", " Alice <alice@sender.test>" },
  { "To", " Bob <bob@example.test>" },
  { "Subject", " conformance" },
}
