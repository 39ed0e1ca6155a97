"""The gevent baseline: gevent's StreamServer, a greenlet per connection.

    python3 echo_gevent.py PORT
"""
import sys

from gevent.server import StreamServer


def echo(sock, _addr):
    while True:
        data = sock.recv(16384)
        if not data:
            break
        sock.sendall(data)


server = StreamServer(("127.0.0.1", int(sys.argv[1])), echo, backlog=4096)
print("gevent echo: listening on 127.0.0.1:" + sys.argv[1], flush=True)
server.serve_forever()
