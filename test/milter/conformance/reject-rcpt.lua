-- The reject-recipient milter at RCPT (-D port, -D refused): the refused address gets SMFIR_REPLYCODE
-- (upper case in the envelope still matches), another recipient continues, and the message goes on.
dofile(conformance .. "/common.lua")

run("reject-rcpt", function()
  local conn = connect_to(port)
  check(not mt.test_option(conn, SMFIP_NORCPT), "RCPT negotiated away")
  greet(conn)
  mail(conn, "<alice@sender.test>", "Q1")
  check(rcpt(conn, "<" .. refused .. ">") == SMFIR_REPLYCODE, "refused recipient not answered with SMFIR_REPLYCODE")
  check(rcpt(conn, "<" .. string.upper(refused) .. ">") == SMFIR_REPLYCODE, "upper-case refused recipient")
  check(rcpt(conn, "<bob@example.test>") == SMFIR_CONTINUE, "other recipient")
  content(conn, MESSAGE_HEADERS, "Hello\r\n")
  must("eom", mt.eom(conn))
  expect_reply(conn, SMFIR_CONTINUE, "eom")
  check(not mt.eom_check(conn, MT_HDRADD), "a header was added")
  mt.disconnect(conn)
end)
