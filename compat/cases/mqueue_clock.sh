# POSIX message queues (mq_open, send, receive, unlink) and a read-only
# adjtimex() query (glibc calls clock_adjtime with modes 0).
python3 - <<'PY'
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
name = b"/compat-%d" % os.getpid()
fd = libc.mq_open(name, os.O_CREAT | os.O_RDWR, 0o600, None)
if fd < 0:
    raise SystemExit("mq_open: " + os.strerror(ctypes.get_errno()))
for word in (b"one", b"two"):
    libc.mq_send(fd, word, len(word), 0)
buf = ctypes.create_string_buffer(8192)
got = [buf.raw[: libc.mq_receive(fd, buf, 8192, None)].decode() for _ in range(2)]
print("queue:", *got)
print("unlink:", libc.mq_unlink(name))
timex = ctypes.create_string_buffer(512)
state = libc.adjtimex(timex)
print("adjtimex query:", "ok" if state >= 0 else os.strerror(ctypes.get_errno()))
PY
echo "status $?"
