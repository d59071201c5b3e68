"""The server's large-frame slots (transports/connection.py) as the WebSocket transport uses them: a message
over the ordinary bound waits for a slot, and the messages behind it wait with it, in order."""

from collections import deque

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatdaemon.config import Limits
from chatdaemon.transports.connection import FrameGate, LargeFrames
from chatdaemon.transports.websocket import ChatWebSocket


class Inbox:
    holding = False


class Session:
    """What ChatWebSocket hands messages to."""

    open = True
    inbox = Inbox()

    def __init__(self):
        self.frames: list[bytes] = []

    def frame_received(self, raw: bytes) -> None:
        self.frames.append(raw)


class Connections:
    def heard(self, session) -> None:
        pass


class Factory:
    maxMessagePayloadSize = 100
    connections = Connections()


def socket(slots: LargeFrames) -> tuple[ChatWebSocket, StringTransport]:
    ws, transport = ChatWebSocket(), StringTransport()
    ws.factory, ws.transport, ws.session = Factory(), transport, Session()
    ws._held = deque()
    ws.gate = FrameGate(transport, slots, ws._deliver)
    return ws, transport


def test_a_large_message_waits_for_a_slot_and_the_ones_behind_it_wait_too():
    clock = Clock()
    slots = LargeFrames(clock, Limits(max_large_frames=1))
    first, _ = socket(slots)
    second, transport = socket(slots)
    assert first.gate.reading_large()  # the one slot is taken: first is reading a large message
    second.onMessage(b"L" * 200, False)  # over the bound: it needs the slot
    second.onMessage(b"small", False)
    assert second.session.frames == [] and transport.producerState == "paused"
    first.onMessage(b"F" * 200, False)  # first's message is handed on: its slot goes to second
    assert first.session.frames == [b"F" * 200] and not first.gate.holding
    clock.advance(0)
    assert second.session.frames == [b"L" * 200, b"small"]
    assert transport.producerState == "producing" and not slots.holders


def test_a_slot_is_given_back_when_the_connection_goes():
    clock = Clock()
    slots = LargeFrames(clock, Limits(max_large_frames=1))
    first, _ = socket(slots)
    second, _ = socket(slots)
    assert first.gate.reading_large()
    assert not second.gate.reading_large()  # queued
    first.gate.close()
    clock.advance(0)
    assert second.gate.holding and list(slots.holders) == [second.gate]
    second.gate.close()
    assert not slots.holders
