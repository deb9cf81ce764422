"""A systemd notify socket for tests: the gateway's READY/STATUS/WATCHDOG/STOPPING datagrams land here."""

from __future__ import annotations

import socket
from pathlib import Path


def notify_socket(tmp_path: Path) -> tuple[socket.socket, str]:
    """A bound, non-blocking AF_UNIX datagram socket in ``tmp_path`` and its path (NOTIFY_SOCKET)."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    return sock, path


def drain(sock: socket.socket) -> list[str]:
    """Every datagram received so far."""
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages
