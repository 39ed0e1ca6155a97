# time.sleep, socket, select and urllib, as a program that knows nothing of ringlet uses
# them. Run natively and under ringlet-run by the patch tests: the output must be the same.
import http.server, select, socket, sys, threading, time, urllib.request

t = time.monotonic(); time.sleep(0.1)
print("sleep", "ok" if 0.09 <= time.monotonic() - t < 2 else "OFF")

a, b = socket.socketpair()
a.sendall(b"ping" * 1000)
got = b""
while len(got) < 4000:
    got += b.recv(1000)
print("socketpair", len(got))
r, _, _ = select.select([b], [], [], 0.05)
print("select timeout", r)
a.send(b"!")
r, _, _ = select.select([b], [], [], 1)
print("select ready", len(r), b.recv(1))
p = select.poll(); p.register(b, select.POLLIN)
print("poll timeout", p.poll(50))

srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(8)
c = socket.create_connection(srv.getsockname(), timeout=5)
s, _ = srv.accept()
c.sendall(b"x" * 300000)
n = 0
while n < 300000:
    n += len(s.recv(65536))
print("tcp", n)
s.settimeout(0.1)
try:
    s.recv(10)
except socket.timeout:
    print("recv timeout")
c.close(); print("eof", s.recv(10)); s.close(); srv.close()

try:
    socket.create_connection(("127.0.0.1", 1))  # blocking: connect(2) itself waits
except ConnectionRefusedError as e:
    print("refused", e.errno)

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("page " + self.path).encode() * 1000
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass

httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
url = "http://localhost:%d/" % httpd.server_address[1]
for path in ("a", "b"):
    with urllib.request.urlopen(url + path, timeout=10) as f:
        data = f.read()
    print("urllib", path, f.status, len(data), data[:6])
print(socket.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM)[0][4])
httpd.shutdown()
import subprocess  # fork/vfork + exec (or posix_spawn) from the patched process
r = subprocess.run(["sh", "-c", "sleep 0.05; echo child $0", "ok"], capture_output=True, text=True, timeout=20)
print("subprocess", r.returncode, r.stdout.strip())
sys.exit(4)
