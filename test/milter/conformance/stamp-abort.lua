-- Abort, then a second message on the same milter connection (-D port, -D footer): nothing of the
-- aborted message (its queue id, its body) leaks into the next one.
dofile(conformance .. "/common.lua")

run("stamp-abort", function()
  local conn = connect_to(port)
  greet(conn)
  mail(conn, "<alice@sender.test>", "ABORTED1")
  check(rcpt(conn, "<bob@example.test>") == SMFIR_CONTINUE, "rcpt 1")
  content(conn, MESSAGE_HEADERS, "first body, aborted\r\n")
  must("abort", mt.abort(conn))

  mail(conn, "<carol@sender.test>", "SECOND2")
  check(rcpt(conn, "<dave@example.test>") == SMFIR_CONTINUE, "rcpt 2")
  content(conn, MESSAGE_HEADERS, "second body\r\n")
  must("eom", mt.eom(conn))
  expect_reply(conn, SMFIR_CONTINUE, "eom")
  check(mt.eom_check(conn, MT_HDRADD, "X-Stamp", " stamped queue-id=SECOND2"), "X-Stamp of the second message")
  check(not mt.eom_check(conn, MT_HDRADD, "X-Stamp", " stamped queue-id=ABORTED1"), "X-Stamp of the aborted message")
  check(mt.eom_check(conn, MT_BODYCHANGE, "second body\r\n" .. footer), "body of the second message only")
  mt.disconnect(conn)
end)
