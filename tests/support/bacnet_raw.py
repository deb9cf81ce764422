"""Raw BACnet/IP from a plain UDP socket: wire-level checks (Reject PDUs, errors) that a client library
would hide, and waiting until a device answers at all."""

from __future__ import annotations

import asyncio
import socket
import struct

# BACnet numbers the tests use (ASHRAE 135 clause 21)
DEVICE, ANALOG_VALUE, BINARY_VALUE, NETWORK_PORT = 8, 2, 5, 56
PV, ALL, PROPERTY_LIST, SERVICES, OBJECT_TYPES = 85, 8, 371, 97, 96
REQUIRED, OPTIONAL, LOCAL_DATE = 105, 80, 56
ACTIVE_COV, OBJECT_LIST = 152, 76
REAL, ENUMERATED = 4, 9


def raw_request(port: int, apdu: bytes, wait: float = 2.0) -> bytes:
    """Send one BACnet/IP unicast with ``apdu`` (NPDU: version 1, expecting reply) from a plain UDP
    socket and return the first answer's APDU (b'' when none comes)."""
    npdu = b"\x01\x04"
    packet = b"\x81\x0a" + struct.pack(">H", 4 + len(npdu) + len(apdu)) + npdu + apdu
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(wait)
        sock.sendto(packet, ("127.0.0.1", port))
        try:
            data, _ = sock.recvfrom(2048)
        except socket.timeout:
            return b""
    # BVLC (4) + NPDU: version, control (no addresses in a local answer)
    return data[6:]


async def device_ready(port: int) -> None:
    """Wait until the device answers a ReadProperty (bacpypes3 opens its UDP endpoint in a task)."""
    loop = asyncio.get_running_loop()
    request = bytes([0x00, 0x05, 1, 12, 0x0C]) + struct.pack(">I", (DEVICE << 22) | 599) + bytes([0x19, 77])
    for _ in range(20):
        if (await loop.run_in_executor(None, raw_request, port, request, 0.5))[:1] == b"\x30":
            return
    raise AssertionError("the gateway's BACnet device does not answer")
