"""Stop taking connections without resetting the ones already queued on the listening socket.

Closing a listening socket resets every connection the kernel has completed but nobody has accepted yet,
and those clients have usually sent their request by then: they see a reset, not an answer. With several
workers the window is wide: the workers share one socket, and the clients one worker sends away during its
drain reconnect into the queue of another that is about to close.

So, on Linux, :func:`refuse_new_connections` first attaches a socket filter that drops every packet to the
listening socket. The kernel then completes no new handshakes on it (shared by every worker, the filter
holds for all of them); a client's SYN goes unanswered until the socket closes and its retry is refused,
before it has sent anything. What was queued before is still accepted and answered, and the listener
closes a moment later, empty.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import sys
from typing import Any

__all__ = ["refuse_new_connections", "QUEUE_GRACE_S"]

# Time the event loop gets to accept what was queued before the filter went on: a few turns of the loop,
# with room for a loaded machine.
QUEUE_GRACE_S = 0.25

_SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
_BPF_RET_K = 0x06  # classic BPF "return the constant k": k = 0 keeps no byte of the packet, so drops it
_DROP_ALL = ctypes.create_string_buffer(struct.pack("HBBI", _BPF_RET_K, 0, 0, 0))


def refuse_new_connections(listener: Any) -> bool:
    """Drop new connections to ``listener`` (an asyncio server) from now on; False where that cannot be done
    (not Linux, or the kernel refused the filter): the caller should then close the listener at once."""
    if not sys.platform.startswith("linux"):
        return False
    program = struct.pack("HL", 1, ctypes.addressof(_DROP_ALL))  # struct sock_fprog {len, filter*}
    try:
        for sock in listener.sockets:
            sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, program)
    except OSError:
        return False
    return True
