-- The stamp milter at end of message (-D port, -D queue_id, -D footer): an X-Stamp header naming the
-- queue id given as the `i` macro (MT_HDRADD) and the body replaced by itself plus the footer
-- (MT_BODYCHANGE; the body is kept far below 64 KiB because miltertest compares each packet alone).
dofile(conformance .. "/common.lua")

run("stamp-eom", function()
  local conn = connect_to(port)
  greet(conn)
  mail(conn, "<alice@sender.test>", queue_id)
  check(rcpt(conn, "<bob@example.test>") == SMFIR_CONTINUE, "rcpt")
  local body = "Hello Bob,\r\n.a dot line\r\n\r\nbye\r\n"
  content(conn, MESSAGE_HEADERS, body)
  must("eom", mt.eom(conn))
  expect_reply(conn, SMFIR_CONTINUE, "eom")
  local stamp = " stamped queue-id=" .. queue_id
  check(mt.eom_check(conn, MT_HDRADD, "X-Stamp", stamp), "no X-Stamp header with" .. stamp)
  check(mt.getheader(conn, "X-Stamp", 0) == stamp, "X-Stamp value")
  check(mt.eom_check(conn, MT_BODYCHANGE, body .. footer), "body not replaced by body plus footer")
  mt.disconnect(conn)
end)
