"""Refusing new connections keeps the queued ones: the drain's listener closes empty."""

from __future__ import annotations

import socket
import sys
from types import SimpleNamespace

import pytest

from stackml.serving.listener import refuse_new_connections


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="socket filters are Linux's")
def test_a_refusing_listener_still_answers_what_was_queued_and_takes_nothing_new() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        address = listening.getsockname()
        queued = socket.create_connection(address)
        queued.sendall(b"request")

        assert refuse_new_connections(SimpleNamespace(sockets=[listening]))

        late = socket.socket()
        late.settimeout(0.3)
        with pytest.raises(TimeoutError):  # its handshake is never completed, so it sends nothing
            late.connect(address)
        late.close()
        accepted, _ = listening.accept()
        with accepted, queued:
            assert accepted.recv(16) == b"request"
            accepted.sendall(b"answer")
            assert queued.recv(16) == b"answer"
    refused = socket.socket()
    with refused, pytest.raises(ConnectionRefusedError):  # closed: the late client's retry is refused
        refused.connect(address)


def test_a_socket_that_refuses_the_filter_is_reported_not_raised() -> None:
    class NoOptions:
        def setsockopt(self, *args: object) -> None:
            raise OSError("not supported")

    assert refuse_new_connections(SimpleNamespace(sockets=[NoOptions()])) is False
