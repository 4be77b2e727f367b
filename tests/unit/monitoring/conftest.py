"""Shared pieces of the monitoring tests: the PostgreSQL mark on ``warehouse_url``'s postgres cases, and a
real local webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark a test here ``postgres`` when it runs on the postgres case of ``warehouse_url``, so
    ``-m 'not postgres'`` leaves it out."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if item.path.is_relative_to(HERE) and callspec and callspec.params.get("warehouse_url") == "postgres":
            item.add_marker(pytest.mark.postgres)


#: what the receiver does with a request: answer with this status, or HANG (never answer)
HANG = "hang"


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that records every POST and answers from a script."""

    script: list[int | str]
    default: int = 200
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def next_action(self) -> int | str:
        return self.script.pop(0) if self.script else self.default


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    """``receiver(500, 500, default=200)`` starts a server answering 500 twice, then 200."""
    servers: list[tuple[ThreadingHTTPServer, Receiver, threading.Thread]] = []

    def start(*script: int | str, default: int = 200) -> Receiver:
        state = Receiver(list(script), default)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                length = int(self.headers.get("Content-Length", 0))
                state.bodies.append(json.loads(self.rfile.read(length)))
                state.headers.append(dict(self.headers))
                action = state.next_action()
                if action == HANG:
                    state.release.wait(10)  # longer than any client timeout; released at teardown
                    return
                self.send_response(int(action))
                self.end_headers()
                self.wfile.write(b"ok" if int(action) < 400 else b"receiver says no")

            def log_message(self, *args: Any) -> None:  # quiet test output
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()
        servers.append((server, state, thread))
        return state

    yield start
    for server, state, thread in servers:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
