"""The load generator's WebSocket framing, checked against RFC 6455's rules and Autobahn's own parser."""

import base64
import hashlib
import os

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.testing import StringTransport

from chatdaemon.bench import wsframe
from chatdaemon.transports.websocket import frame_header, text_message


def server_frame(payload: bytes, opcode: int = wsframe.OP_TEXT) -> bytes:
    return frame_header(opcode, len(payload)) + payload


def test_client_frames_are_masked_and_carry_their_length():
    for size in (0, 5, 125, 126, 65535, 65536):
        payload = os.urandom(size)
        frame = wsframe.encode_frame(payload)
        assert frame[0] == 0x81 and frame[1] & 0x80  # FIN + text; the mask bit set
        [(op, got)] = wsframe.payloads(frame, 0, len(frame))
        assert op == wsframe.OP_TEXT and got == payload


def test_a_random_mask_round_trips():
    mask = b"\x12\x34\x56\x78"
    frame = wsframe.encode_frame_masked(b"hello, world", mask)
    assert frame[2:6] == mask and frame[6:] != b"hello, world"
    assert wsframe.payloads(frame, 0, len(frame)) == [(wsframe.OP_TEXT, b"hello, world")]


def test_scan_stops_at_the_last_complete_frame_and_reports_control_frames():
    frames = server_frame(b'{"a":1}') + server_frame(b"x" * 300) + server_frame(b"pp", wsframe.OP_PING)
    tail = server_frame(b"y" * 70000)
    data = bytearray(frames + tail[:1000])
    control: list = []
    assert wsframe.scan(data, 0, len(data), control) == len(frames)
    assert control == [(wsframe.OP_PING, b"pp")]
    data = bytearray(frames + tail)
    assert wsframe.scan(data, 0, len(data), []) == len(data)
    for cut in range(len(frames)):  # any prefix: never past a partial frame
        assert wsframe.scan(data, 0, cut, []) <= cut


def test_the_handshake_checks_the_accept_key():
    request, accept = wsframe.handshake_request("127.0.0.1", 8080, "/ws?token=K&dialect=typed")
    assert request.startswith(b"GET /ws?token=K&dialect=typed HTTP/1.1\r\n")
    key = request.split(b"Sec-WebSocket-Key: ")[1].split(b"\r\n")[0]
    assert accept == base64.b64encode(hashlib.sha1(key + wsframe.GUID).digest())
    ok = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    assert wsframe.parse_handshake_response(ok[:20], accept) == (0, 0, "")
    assert wsframe.parse_handshake_response(ok + b"\x81\x00", accept) == (len(ok), 101, "")
    bad = ok.replace(accept, b"nope")
    assert wsframe.parse_handshake_response(bad, accept)[2] == "bad Sec-WebSocket-Accept"
    refused = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
    assert wsframe.parse_handshake_response(refused, accept)[1:] == (401, "HTTP 401: HTTP/1.1 401 Unauthorized")


def test_the_servers_text_messages_are_what_autobahn_writes():
    factory = WebSocketServerFactory()
    factory.protocol = WebSocketServerProtocol
    autobahn = factory.buildProtocol(None)
    wire = StringTransport()
    autobahn.makeConnection(wire)
    autobahn.state, autobahn.websocket_version = autobahn.STATE_OPEN, 13
    for size in (0, 125, 126, 65535, 65536):
        payload = os.urandom(size)
        wire.clear()
        autobahn.sendMessage(payload, isBinary=False)
        assert text_message(payload) == wire.value()
        [(op, got)] = wsframe.payloads(wire.value(), 0, len(wire.value()))
        assert op == wsframe.OP_TEXT and got == payload
