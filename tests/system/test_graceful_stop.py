"""A graceful stop (SIGTERM: a deploy, systemd, a Procfile runner) answers what is under way.

The request is under way when the signal comes: the client has connected and sent
part of its headers.  The server must stop taking connections, yet answer that
request whole once its headers are complete, and then end on its own with status 0.
Nothing here is timed: the waits are bounded only so that a broken stop fails the
test instead of hanging it.
"""

from __future__ import annotations

import http.client
import signal
import socket
import time
import urllib.request
from pathlib import Path

from tests.system.test_serve_e2e import serve_site

BOUND = 20.0  # seconds any step may take before the test calls it broken


def listen_queue(port: int) -> int | None:
    """Connections the kernel holds for ``port``'s listening socket that no worker has
    accepted yet (its receive queue in ``/proc/net/tcp``), or None once nobody listens.

    Read from the kernel's table rather than probed with a connection: a probe that lands
    in the queue just as the last listener closes is reset, and would itself be a new
    connection the stopping server has to deal with."""
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                return int(fields[4].split(":")[1], 16)
    return None


def test_a_request_under_way_at_sigterm_is_answered_whole(site_dir: Path) -> None:
    with serve_site(site_dir) as server:
        with urllib.request.urlopen(server.url + "feed.rss", timeout=BOUND) as plain:
            expected = plain.read()
        assert expected
        client = socket.create_connection(("127.0.0.1", server.port), timeout=BOUND)
        try:
            client.sendall(b"GET /feed.rss HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # not finished
            deadline = time.monotonic() + BOUND
            while listen_queue(server.port):  # a worker has it and waits for the rest
                assert time.monotonic() < deadline, "no worker took the connection"
                time.sleep(0.01)
            server.process.send_signal(signal.SIGTERM)
            while listen_queue(server.port) is not None:  # until master and workers close it
                assert time.monotonic() < deadline + BOUND, "the server kept taking connections"
                time.sleep(0.05)
            assert server.process.poll() is None  # still there: a request is under way
            client.sendall(b"Connection: close\r\n\r\n")
            response = http.client.HTTPResponse(client)
            response.begin()
            assert response.status == 200
            assert response.read() == expected
        finally:
            client.close()
        assert server.process.wait(timeout=BOUND) == 0
