#!/usr/bin/env python3
"""The seed crawler's design, for the bench's Python row.

The program this project started from (shared/seed): one Client state machine per
URL on non-blocking sockets, a Select holder that registers EVENT_WRITE until the
socket is connected and then EVENT_READ, callbacks stored in key.data, an explicit
event loop over selectors.DefaultSelector, "Connection: close" on every request,
and the response read until end of stream.

Kept from the original: all of the above. Changed, so it can be timed fairly and
cannot hang: at most --concurrency URLs in flight (the original starts all at
once; the other clients of the row use the same limit), recv(65536) rather than
recv(1024), the loop ends when every URL is done, one URL's error does not stop
the others, a deadline (--max-seconds), and the body is checked against
Content-Length rather than printed.

Prints one JSON line: {"ok", "failed", "bytes", "seconds", "firstError"}; the time
covers the crawl only, not the interpreter's start.

Usage: python3 bench/_seed_crawler.py --port N [--host 127.0.0.1] [--path /1k]
       [--count 2000] [--concurrency 64] [--expect-length 1024] [--max-seconds 120]
"""

import argparse
import errno
import json
import socket
import time
from selectors import EVENT_READ, EVENT_WRITE, DefaultSelector


class Client:
    """Connects, sends the request and collects the response of one URL."""

    def __init__(self, host, port, path):
        self.host, self.port, self.path = host, port, path
        self.sock = socket.socket()
        self.sock.setblocking(False)
        self.data = bytearray()
        self.error = None
        try:
            self.sock.connect((host, port))
        except BlockingIOError:
            pass

    def send_request(self):
        request = "GET {} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n\r\n".format(
            self.path, self.host, self.port
        ).encode("ascii")
        # A request this small fits the socket buffer of a fresh connection.
        self.sock.send(request)

    def recv_response(self):
        """Returns True while more may come, False at end of stream."""
        chunk = self.sock.recv(65536)
        if chunk:
            self.data += chunk
            return True
        return False

    def end(self):
        """Closes the socket and returns (status, body)."""
        self.sock.close()
        head, sep, body = bytes(self.data).partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("response without a complete head")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length" and int(value) != len(body):
                raise ValueError("body length differs from Content-Length")
        return status, body


class Select:
    """The selector, and the registration of each client's socket events."""

    def __init__(self, on_done):
        self.selector = DefaultSelector()
        self.clients = {}
        self.on_done = on_done

    def start_listening(self, client):
        self.clients[client.sock] = client
        self.selector.register(client.sock, EVENT_WRITE, self.connected)

    def connected(self, key):
        sock = key.fileobj
        client = self.clients[sock]
        self.selector.unregister(sock)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.fail(client, OSError(err, errno.errorcode.get(err, "connect failed")))
            return
        try:
            client.send_request()
        except OSError as e:
            self.fail(client, e)
            return
        self.selector.register(sock, EVENT_READ, self.do_read)

    def do_read(self, key):
        sock = key.fileobj
        client = self.clients[sock]
        try:
            if client.recv_response():
                return
        except OSError as e:
            self.selector.unregister(sock)
            self.fail(client, e)
            return
        self.selector.unregister(sock)
        del self.clients[sock]
        try:
            status, body = client.end()
        except (OSError, ValueError) as e:
            self.on_done(client, None, None, e)
            return
        self.on_done(client, status, body, None)

    def fail(self, client, error):
        self.clients.pop(client.sock, None)
        client.sock.close()
        self.on_done(client, None, None, error)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/1k")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--expect-length", type=int, default=1024)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    args = ap.parse_args()

    result = {"ok": 0, "failed": 0, "bytes": 0, "seconds": 0.0, "firstError": None}
    started = 0

    def on_done(client, status, body, error):
        if error is None and status == 200 and len(body) == args.expect_length:
            result["ok"] += 1
            result["bytes"] += len(body)
        else:
            result["failed"] += 1
            if result["firstError"] is None:
                result["firstError"] = str(error) if error else "status {}, {} bytes".format(
                    status, len(body) if body is not None else 0
                )

    sel = Select(on_done)
    t0 = time.perf_counter()
    deadline = t0 + args.max_seconds
    while started < min(args.concurrency, args.count):
        sel.start_listening(Client(args.host, args.port, args.path))
        started += 1
    # The event loop: ends when nothing is registered or at the deadline.
    while sel.selector.get_map() and time.perf_counter() < deadline:
        for key, mask in sel.selector.select(timeout=1.0):
            callback = key.data
            callback(key)
        while started < args.count and len(sel.clients) < args.concurrency:
            sel.start_listening(Client(args.host, args.port, args.path))
            started += 1
    result["seconds"] = time.perf_counter() - t0
    for sock in list(sel.clients):
        sock.close()
        result["failed"] += 1
    sel.selector.close()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
