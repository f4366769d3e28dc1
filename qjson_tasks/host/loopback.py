"""The host's loopback interface: a free port, whether one is listening, one HTTP POST.

Only 127.0.0.1: a check's server never listens anywhere else, and the host reaches it there
because buildah's chroot isolation shares the host's network. socket and http.client are
imported when used: every build loads the verification code, few run a gateway check.
"""

from __future__ import annotations

from dataclasses import dataclass

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Answer:
    status: int
    body: str


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick). Another process may take it
    before the server binds it: a caller retries with a new one when the bind fails."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def is_listening(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((LOOPBACK, port)) == 0


def post(port: int, path: str, body: str, content_type: str, timeout: float) -> Answer:
    """POST body to http://127.0.0.1:port/path; raises OSError (incl. timeouts) and
    http.client.HTTPException when there is no proper answer."""
    import http.client

    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("POST", path, body=body.encode(), headers={"Content-Type": content_type})
        response = connection.getresponse()
        return Answer(response.status, response.read().decode("utf-8", errors="replace"))
    finally:
        connection.close()
