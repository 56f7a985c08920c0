"""An HTTP fault proxy on loopback: real sockets between a device and the server, with faults.

Each request that reaches the proxy is read whole, then, at random with configurable rates:

- `drop`:  the connection is reset before anything is forwarded (the server never saw it);
- `delay`: it waits, then forwards (long delays outlast the device's timeout, so the device
  gives up while the server still commits: the retry and the late original may race);
- `cut`:   it forwards, lets the server answer (and so commit), then resets the device's
  connection without answering: the device cannot know its items were stored;
- `busy`:  it answers 503 with `Retry-After` itself, as an overloaded load balancer does.

Independently of the rates, a request whose body holds the `poison_marker` bytes is answered
500 every time: a server bug that one item triggers, which the device must isolate. When the
server cannot be reached (killed, restarting) the device's connection is reset (`down`).

Use it in a script or a test (`with FaultProxy(("127.0.0.1", port), FaultRates(...)) as proxy:`
then point the device at `proxy.url`), or on its own in front of a browser:
`python -m bench.fault_proxy --upstream 127.0.0.1:8000 --port 9000 --drop 0.05 --cut 0.05`.
Only paths under `fault_paths` (the sync API by default) get random faults, so an app shell
still loads. It speaks HTTP/1.1 with keep-alive to the device and opens one upstream
connection per request (gunicorn's sync workers close after each answer anyway).
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import struct
import threading
import time
from dataclasses import asdict, dataclass

KINDS = ("drop", "delay", "cut", "busy")
# Counted apart from the random kinds: the simulated server bug, and a server that is down.
OTHER_COUNTS = ("poison", "down")
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "transfer-encoding", "upgrade", "content-length"})
MAX_HEAD_BYTES = 64 * 1024
# SO_LINGER with a zero timeout: close() sends RST, as a dropped mobile connection looks.
_RESET = struct.pack("ii", 1, 0)


@dataclass
class FaultRates:
    """The chance, per request, of each fault; their sum must stay at or below 1."""

    drop: float = 0.0
    delay: float = 0.0
    cut: float = 0.0
    busy: float = 0.0

    def total(self) -> float:
        """The chance that a request meets any random fault."""
        return self.drop + self.delay + self.cut + self.busy


class _Reset(Exception):
    """The device's connection is to be reset without an answer."""


def reset_connection(sock: socket.socket):
    """Close with RST, not FIN, as a dropped mobile connection looks to the other end."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class FaultProxy:
    """Listens on 127.0.0.1 and forwards HTTP requests to `upstream`, injecting faults."""

    def __init__(self, upstream: tuple[str, int], rates: FaultRates | None = None, *, port: int = 0,
                 seed: int | None = None, poison_marker: bytes | None = None,
                 fault_paths: tuple[str, ...] = ("/api/sync/v1",), delay_s: tuple[float, float] = (0.05, 1.0),
                 retry_after_s: int = 1, upstream_timeout: float = 120.0):
        self.upstream = upstream
        self.rates = rates or FaultRates()
        self.poison_marker = poison_marker
        self.fault_paths = fault_paths
        self.delay_s = delay_s
        self.retry_after_s = retry_after_s
        self.upstream_timeout = upstream_timeout
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(KINDS + OTHER_COUNTS + ("requests", "forwarded"), 0)
        self._open: set[socket.socket] = set()
        self._paused = False
        self.last_fault_at: float | None = None  # time.monotonic() of the last random fault
        self._listener = socket.create_server(("127.0.0.1", port), backlog=256)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)
        self._thread.start()

    # -- control -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Where a device should send its requests."""
        return f"http://127.0.0.1:{self.port}"

    def set_rates(self, rates: FaultRates):
        """Change the fault rates from now on."""
        with self._lock:
            self.rates = rates

    def pause(self):
        """No more random faults (poison is a server bug: it stays)."""
        with self._lock:
            self._paused = True

    def resume(self):
        """Random faults again, at the current rates."""
        with self._lock:
            self._paused = False

    def counts(self) -> dict:
        """Requests seen, forwarded, and each fault injected so far."""
        with self._lock:
            return dict(self._counts)

    def close(self):
        """Stop listening and reset every open connection."""
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() a close alone would not
        except OSError:
            pass
        reset_connection(self._listener)
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            reset_connection(sock)
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- serving ---------------------------------------------------------------------------

    def _count(self, kind: str, fault: bool = False):
        with self._lock:
            self._counts[kind] += 1
            if fault:
                self.last_fault_at = time.monotonic()

    def _accept_loop(self):
        while True:
            try:
                sock, _address = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._open.add(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket):
        reader = sock.makefile("rb")
        try:
            while True:
                request = _read_request(reader)
                if request is None:
                    break
                keep_alive = self._handle(sock, *request)
                if not keep_alive:
                    break
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        except _Reset:
            reset_connection(sock)
        except OSError:
            reset_connection(sock)  # the device went away mid-request; nothing to answer
        finally:
            reader.close()
            with self._lock:
                self._open.discard(sock)

    def _decide(self, path: str, body: bytes) -> str | None:
        if self.poison_marker and self.poison_marker in body:
            return "poison"
        with self._lock:
            if self._paused or not path.startswith(self.fault_paths):
                return None
            roll, rates = self._rng.random(), self.rates
            delay = self._rng.uniform(*self.delay_s)
        for kind in KINDS:
            chance = getattr(rates, kind)
            if roll < chance:
                return kind if kind != "delay" else f"delay:{delay}"
            roll -= chance
        return None

    def _handle(self, sock, method: str, path: str, version: str, headers: list, body: bytes) -> bool:
        """Serve one request; returns whether the connection stays open."""
        self._count("requests")
        wants_close = version == "HTTP/1.0" or any(
            name.lower() == "connection" and "close" in value.lower() for name, value in headers)
        fault = self._decide(path, body)
        if fault == "poison":
            self._count("poison")
            _answer(sock, 500, {"code": "server_error", "message": "Something went wrong on our side. Nothing you sent is lost. Try again later."}, {},
                    method, wants_close)
            return not wants_close
        if fault == "drop":
            self._count("drop", fault=True)
            raise _Reset
        if fault == "busy":
            self._count("busy", fault=True)
            _answer(sock, 503, {"code": "unavailable", "message": "Kerbside is busy. Wait a moment, then try again. The field app tries again by itself."},
                    {"Retry-After": str(self.retry_after_s)}, method, wants_close)
            return not wants_close
        if fault and fault.startswith("delay:"):
            self._count("delay", fault=True)
            time.sleep(float(fault.split(":", 1)[1]))
        try:
            status, reason, answer_headers, answer_body = self._forward(method, path, headers, body)
        except (OSError, http.client.HTTPException):
            self._count("down")
            raise _Reset from None
        self._count("forwarded")
        if fault == "cut":
            self._count("cut", fault=True)
            raise _Reset  # the server has answered, so it has committed: the device never hears it
        _write(sock, status, reason, answer_headers, answer_body, method, wants_close)
        return not wants_close

    def _forward(self, method: str, path: str, headers: list, body: bytes):
        connection = http.client.HTTPConnection(*self.upstream, timeout=self.upstream_timeout)
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in HOP_BY_HOP:
                    connection.putheader(name, value)
            if body or method in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(len(body)))
            connection.putheader("Connection", "close")
            connection.endheaders(body or None)
            answer = connection.getresponse()
            answer_body = answer.read()
            return answer.status, answer.reason, answer.getheaders(), answer_body
        finally:
            connection.close()


def _read_request(reader) -> tuple | None:
    """One request from the device: (method, path, version, headers, body), or None at the end."""
    line = reader.readline(MAX_HEAD_BYTES)
    while line in (b"\r\n", b"\n"):
        line = reader.readline(MAX_HEAD_BYTES)  # tolerated between keep-alive requests
    if not line:
        return None
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3:
        raise _Reset
    method, path, version = parts
    headers = []
    size = len(line)
    while True:
        line = reader.readline(MAX_HEAD_BYTES)
        size += len(line)
        if not line or size > MAX_HEAD_BYTES:
            raise _Reset
        if line in (b"\r\n", b"\n"):
            break
        name, _colon, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    lower = {name.lower(): value for name, value in headers}
    if "chunked" in lower.get("transfer-encoding", "").lower():
        body = _read_chunked(reader)
    else:
        length = int(lower.get("content-length") or 0)
        body = reader.read(length) if length else b""
        if len(body) != length:
            raise _Reset
    return method, path, version, headers, body


def _read_chunked(reader) -> bytes:
    chunks = []
    while True:
        size_line = reader.readline(MAX_HEAD_BYTES)
        if not size_line:
            raise _Reset
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while reader.readline(MAX_HEAD_BYTES) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        chunks.append(reader.read(size))
        reader.readline(MAX_HEAD_BYTES)


def _write(sock, status: int, reason: str, headers: list, body: bytes, method: str, close: bool):
    lines = [f"HTTP/1.1 {status} {reason}"]
    length = None
    for name, value in headers:
        if name.lower() == "content-length":
            length = value
        if name.lower() not in HOP_BY_HOP:
            lines.append(f"{name}: {value}")
    # A HEAD answer says how long the body would be; every other answer says how long it is.
    lines.append(f"Content-Length: {length if method == 'HEAD' and length is not None else len(body)}")
    lines.append("Connection: close" if close else "Connection: keep-alive")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    sock.sendall(head + (b"" if method == "HEAD" else body))


def _answer(sock, status: int, envelope: dict, extra_headers: dict, method: str, close: bool):
    body = json.dumps({**envelope, "errors": {}}).encode()
    headers = [("Content-Type", "application/json"), *extra_headers.items()]
    _write(sock, status, http.client.responses.get(status, ""), headers, body, method, close)


def main(argv=None) -> int:
    """Run the proxy on its own until interrupted, printing its counts every few seconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="host:port of the server")
    parser.add_argument("--port", type=int, default=0, help="where to listen on 127.0.0.1 (0: any free port)")
    for kind in KINDS:
        parser.add_argument(f"--{kind}", type=float, default=0.0, help=f"chance of a {kind} fault per request")
    parser.add_argument("--delay-max", type=float, default=1.0, help="longest delay, seconds")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After of the proxy's own 503s")
    parser.add_argument("--poison", default=None, help="answer 500 to any request whose body holds this text")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    host, _colon, port = args.upstream.rpartition(":")
    rates = FaultRates(**{kind: getattr(args, kind) for kind in KINDS})
    proxy = FaultProxy((host or "127.0.0.1", int(port)), rates, port=args.port, seed=args.seed,
                       poison_marker=args.poison.encode() if args.poison else None,
                       delay_s=(0.0, args.delay_max), retry_after_s=args.retry_after)
    print(f"Fault proxy on {proxy.url} -> {args.upstream}; rates {asdict(rates)}", flush=True)
    try:
        while True:
            time.sleep(5)
            print(proxy.counts(), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        proxy.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
