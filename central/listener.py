"""The centre's listening socket, taken first thing at start-up.

Binding before anything slow (importing torch, loading and profiling the model: seconds) means
a port already in use is refused at once, and a client that connects while the centre starts
waits in the kernel's backlog and then reads "starting" instead of "connection refused".
Only the standard library here, so that ``epic central`` can bind before it imports the rest.
"""

from __future__ import annotations

import errno
import socket

from epic.shared.errors import OptionError

__all__ = ["ListenError", "listen", "url_of"]

BACKLOG = 128


class ListenError(OptionError):
    """The centre cannot serve at ``--host``/``--port``; ``str()`` is ``HOST:PORT: why``."""


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening; a ``ListenError`` says why not."""
    where = f"{host}:{port}"
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except OSError as exc:
        raise ListenError(where, f"no such address ({exc.strerror}); check --host") from exc
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Lets a restarted centre take its port while the old connections sit in TIME_WAIT;
        # on Linux it never lets two live listeners share one.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            why = "the port is in use (another centre, or the demo?); choose another with --port"
        elif exc.errno == errno.EACCES:
            why = "not allowed to listen there (ports below 1024 need root); choose --port"
        else:
            why = f"cannot listen there ({exc.strerror}); check --host and --port"
        raise ListenError(where, why) from exc
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://HOST:PORT/`` of a bound socket (the real port when 0 was asked)."""
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/"
