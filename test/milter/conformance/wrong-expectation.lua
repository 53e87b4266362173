-- A deliberately wrong expectation against the stamp milter (-D port): it is given the queue id RIGHT
-- and this script insists on WRONG, so it must fail (exit status 1). Proves failures are detected.
dofile(conformance .. "/common.lua")

run("wrong-expectation", function()
  local conn = connect_to(port)
  greet(conn)
  mail(conn, "<alice@sender.test>", "RIGHT")
  content(conn, MESSAGE_HEADERS, "Hello\r\n")
  must("eom", mt.eom(conn))
  check(mt.eom_check(conn, MT_HDRADD, "X-Stamp", " stamped queue-id=WRONG"), "no X-Stamp with queue-id=WRONG")
  mt.disconnect(conn)
end)
