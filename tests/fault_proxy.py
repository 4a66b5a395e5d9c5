"""A real HTTP proxy, run in a thread, that forwards to an upstream server or injects faults on a schedule.

    proxy = FaultProxy("http://127.0.0.1:8000", schedule=[("429", 1), "500", ("slow", 2.0), "reset"])
    proxy.start()            # proxy.url is the base URL to give clients (with /v1)
    ...
    proxy.stop()

The schedule is consumed one action per arriving request (in arrival order); after it runs out every request
is forwarded. Actions: "pass"; ("429", seconds): answer 429 with Retry-After; "500": answer 500; ("slow", s):
wait s seconds, then forward (a client with a shorter timeout has given up); "reset": close the connection
without an answer. `events` records every request (arrival and answer times, body, action, headers) and
`max_in_flight` the most requests the proxy held at once.
"""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultProxy:
    def __init__(self, upstream: str, schedule=()):
        self.upstream = upstream.rstrip("/")
        self.schedule = deque(schedule)
        self.events: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                proxy._handle(self)

            def do_GET(self):
                proxy._handle(self)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def received(self) -> int:
        with self.lock:
            return len(self.events)

    def start(self) -> "FaultProxy":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        with self.lock:
            action = self.schedule.popleft() if self.schedule else "pass"
            event = {"arrived": time.monotonic(), "body": body, "action": action, "headers": dict(h.headers)}
            self.events.append(event)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            kind = action[0] if isinstance(action, tuple) else action
            if kind == "429":
                self._answer(h, event, 429, {"error": {"message": "rate limited (injected)"}},
                             {"Retry-After": str(action[1])})
            elif kind == "500":
                self._answer(h, event, 500, {"error": {"message": "server error (injected)"}})
            elif kind == "reset":
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
            else:
                if kind == "slow":
                    time.sleep(action[1])
                self._forward(h, event, body)
        finally:
            self._release(event)

    def _release(self, event: dict) -> None:
        """The request stops counting as held: before its answer is written (a client that has read the answer
        may send its next request at once, and must not find this one still counted), or when it ends unanswered."""
        with self.lock:
            if "answered" not in event:
                event["answered"] = time.monotonic()
                self.in_flight -= 1

    def _forward(self, h: BaseHTTPRequestHandler, event: dict, body: bytes) -> None:
        req = urllib.request.Request(self.upstream + h.path, data=body if h.command == "POST" else None,
                                     headers={"Content-Type": "application/json"}, method=h.command)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, data = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        except OSError as e:
            status, data = 502, json.dumps({"error": {"message": f"upstream: {e}"}}).encode()
        self._answer(h, event, status, data)

    def _answer(self, h: BaseHTTPRequestHandler, event: dict, status: int, payload,
                headers: dict | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self._release(event)
        try:
            h.send_response(status)
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except OSError:  # the client timed out and left
            pass
