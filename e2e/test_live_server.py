"""The browser tests' live server closes every answer's body, even for a browser that resets the connection."""

from __future__ import annotations

import gc
import socket
import struct
import threading
import time
import warnings

import pytest
from werkzeug.serving import make_server

from e2e.conftest import ClosesWhatTheServerDrops
from server import create_app

RESET = struct.pack("ii", 1, 0)


@pytest.fixture
def app(tmp_path):
    """The app alone: an icon needs no data."""
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'kerbside.sqlite'}",
                       "SECRET_KEY": "test"})


def unclosed_files_after_resets(app, wrap: bool, tries: int = 20) -> int:
    """Fetch an icon `tries` times, resetting each connection once the answer began; count files left open."""
    server = make_server("127.0.0.1", 0, ClosesWhatTheServerDrops(app) if wrap else app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", ResourceWarning)
            for _ in range(tries):
                with socket.create_connection(("127.0.0.1", server.server_port)) as browser:
                    browser.sendall(b"GET /app/icons/icon-512.png HTTP/1.1\r\nHost: kerbside\r\n\r\n")
                    browser.recv(100)
                    browser.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
            time.sleep(0.5)  # the server's threads finish with each answer
            gc.collect()
        return sum(1 for warning in seen if "unclosed file" in str(warning.message))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_no_file_is_left_open_when_the_browser_resets_the_connection(app):
    assert unclosed_files_after_resets(app, wrap=True) == 0


def test_negative_control_werkzeugs_own_server_leaves_files_open_on_a_reset(app):
    # The leak the wrapper exists for; should werkzeug fix it, this test says the wrapper can go.
    assert unclosed_files_after_resets(app, wrap=False) > 0
