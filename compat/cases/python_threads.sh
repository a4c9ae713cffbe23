# python3: threads, a subprocess, and a loopback TCP connection.
cd "$(mktemp -d)"
/usr/bin/python3 - <<'PY'
import socket, subprocess, threading

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
results = []

def client(i):
    with socket.create_connection(server.getsockname()) as c:
        c.sendall(f"hello {i}".encode())
        results.append(c.recv(64).decode())

threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
for _ in threads:
    conn, _ = server.accept()
    with conn:
        conn.sendall(conn.recv(64).upper())
for t in threads:
    t.join()
print(sorted(results))
out = subprocess.run(["sh", "-c", "echo from a child; exit 3"], capture_output=True, text=True)
print(out.stdout.strip(), out.returncode)
PY
echo "status $?"
