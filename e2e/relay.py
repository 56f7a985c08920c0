"""A TCP relay between the browser and the live server that can be cut, like a lost signal.

Chromium's offline switch and Playwright's routes do not cover every request: a service
worker woken for Background Sync as a persistent profile reopens can reach the network
before either is attached (see docs/pwa.md). A test that must prove nothing was sent while
"offline" therefore puts the server itself out of reach: while the relay is cut, every open
connection is reset and every new one is reset as soon as it is accepted.
"""

from __future__ import annotations

import socket
import threading

from bench.fault_proxy import reset_connection

class Relay:
    """Listens on 127.0.0.1:<free port> and forwards each connection to `upstream`."""

    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self.refused = 0  # connections reset because the relay was cut
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self):
        """No signal: reset every open connection and every new one from now on."""
        with self._lock:
            self._cut = True
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            reset_connection(sock)

    def restore(self):
        """Signal again: new connections reach the server."""
        with self._lock:
            self._cut = False

    def close(self):
        self.cut()
        reset_connection(self._listener)

    def _accept_loop(self):
        while True:
            try:
                client, _address = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                cut = self._cut
            if cut:
                self.refused += 1
                reset_connection(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                reset_connection(client)
                continue
            with self._lock:
                if self._cut:  # cut while we connected
                    reset_connection(client)
                    reset_connection(server)
                    continue
                self._open.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        # One side finished: end both, so neither waits on a half-open connection.
        with self._lock:
            self._open.discard(source)
            self._open.discard(target)
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass
