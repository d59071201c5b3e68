"""A minimal WebSocket client framing (RFC 6455), written for the load generator's speed.

Only what a benchmark client needs: the opening handshake by hand, masked text
frames from the client, and a scanner that finds where the complete server
frames end in a buffer without copying their payloads (the caller counts its
markers over the whole region at once; a frame header cannot spell a marker).

Server frames are unmasked (RFC 6455 section 5.1); client frames must be masked.
Control frames (ping, pong, close) are reported so the caller can answer pings.
Fragmented messages are not reassembled: chatd (Autobahn) sends each message as
one frame, and a continuation frame is simply skipped like any other.
"""

import base64
import hashlib
import os

from ..transports.websocket import frame_header

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

_MASK = b"\x00\x00\x00\x00"  # all-zero mask: legal, and the payload needs no XOR


def handshake_request(host: str, port: int, path: str) -> tuple[bytes, bytes]:
    """The client's opening handshake and the Sec-WebSocket-Accept value the server must answer."""
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    request = (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key.decode()}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n"
    ).encode()
    return request, accept


def parse_handshake_response(data: bytes | bytearray, accept: bytes) -> tuple[int, int, str]:
    """Look for the end of the server's handshake response in `data`.

    Returns (consumed, status, error): consumed is 0 while the headers are incomplete; status is the
    HTTP status code; error is "" when the upgrade succeeded (101 with the right accept key).
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return 0, 0, ""
    head = bytes(data[:end]).decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        return end + 4, 0, f"not an HTTP response: {lines[0][:80]!r}"
    if status != 101:
        return end + 4, status, f"HTTP {status}: {lines[0][:80]}"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("sec-websocket-accept", "").encode() != accept:
        return end + 4, status, "bad Sec-WebSocket-Accept"
    return end + 4, status, ""


def encode_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One final, masked client frame.

    The mask is all zeros (RFC 6455 lets the client choose any 32-bit mask; a zero mask leaves the
    payload as it is), which spares the load generator an XOR over every byte it sends. Servers must
    accept it; chatd's (Autobahn) does.
    """
    return frame_header(opcode, len(payload), masked=True) + _MASK + payload


def encode_frame_masked(payload: bytes, mask: bytes, opcode: int = OP_TEXT) -> bytes:
    """A final client frame with a given 4-byte mask (for tests and servers that insist on a random one)."""
    return frame_header(opcode, len(payload), masked=True) + mask + unmask(payload, mask)


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR a payload with its 4-byte mask (what a server does)."""
    return bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def scan(buf: bytes | bytearray, start: int, end: int, control: list[tuple[int, bytes]]) -> int:
    """Find the end of the last complete server frame in buf[start:end].

    Returns the offset just past it (== start if no frame is complete). Control frames met on the
    way are appended to `control` as (opcode, payload). Server frames carry no mask; a masked one
    is skipped over all the same.
    """
    i = start
    while True:
        if i + 2 > end:
            return i
        b1 = buf[i + 1]
        n = b1 & 0x7F
        h = 2
        if n == 126:
            if i + 4 > end:
                return i
            n = (buf[i + 2] << 8) | buf[i + 3]
            h = 4
        elif n == 127:
            if i + 10 > end:
                return i
            n = int.from_bytes(buf[i + 2 : i + 10], "big")
            h = 10
        if b1 & 0x80:
            h += 4
        if i + h + n > end:
            return i
        op = buf[i] & 0x0F
        if op >= OP_CLOSE:
            control.append((op, bytes(buf[i + h : i + h + n])))
        i += h + n


def payloads(buf: bytes | bytearray, start: int, end: int) -> list[tuple[int, bytes]]:
    """Every complete frame in buf[start:end] as (opcode, payload): the slow path, for set-up."""
    out = []
    i = start
    while i + 2 <= end:
        b1 = buf[i + 1]
        n = b1 & 0x7F
        h = 2
        if n == 126:
            n = (buf[i + 2] << 8) | buf[i + 3]
            h = 4
        elif n == 127:
            n = int.from_bytes(buf[i + 2 : i + 10], "big")
            h = 10
        mask = bytes(buf[i + h : i + h + 4]) if b1 & 0x80 else b""
        h += len(mask)
        if i + h + n > end:
            break
        data = bytes(buf[i + h : i + h + n])
        out.append((buf[i] & 0x0F, unmask(data, mask) if mask else data))
        i += h + n
    return out
