"""What every test that starts a server process needs: a free loopback port, and a child that
dies with the test run."""

from __future__ import annotations

import ctypes
import signal
import socket
import sys


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_the_tests() -> None:
    """In the child: if the test run is killed, the server goes too (no orphans left)."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
