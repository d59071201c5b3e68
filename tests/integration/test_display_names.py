"""Display text keeps no control characters, over real sockets: bidirectional overrides and isolates, and other
controls, are removed from file names, group names and statuses before they are stored and shown to others."""

import base64

import orjson
import pytest
import pytest_twisted

from chatdaemon.core.files import display_name
from chatdaemon.core.model import display_text
from tests.conftest import connect, typed_friends, typed_user
from tests.wsclient import Http

RLO, LRI, PDI = "\u202e", "\u2066", "\u2069"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (f"{RLO}txt.exe", "txt.exe"),
        ("a\u202ab\u202bc\u202cd\u202de", "abcde"),
        (f"{LRI}x\u2067y\u2068z{PDI}", "xyz"),
        ("\u200e\u200f\u061cname", "name"),
        ("zero\u200bwidth\ufeff\u00ad", "zerowidth"),
        ("bell\x07 and\x1b[31m escape\x7f\x9b", "bell and[31m escape"),
        ("two\nlines\r\tand a tab", "two lines  and a tab"),
        ("  trimmed  ", "trimmed"),
        (
            "emoji \U0001f468\u200d\U0001f469\u200d\U0001f467 family",
            "emoji \U0001f468\u200d\U0001f469\u200d\U0001f467 family",
        ),
        ("\U0001f3f4\U000e0067\U000e0062\U000e007f", "\U0001f3f4\U000e0067\U000e0062\U000e007f"),  # a flag's tags
        ("שלום world", "שלום world"),  # right-to-left letters themselves stay
    ],
)
def test_display_text_removes_what_controls_the_display(raw, shown):
    assert display_text(raw) == shown


def test_file_names_are_display_text_of_their_last_component():
    assert display_name(f"..\\..\\{RLO}gpj.exe") == "gpj.exe"
    assert display_name(f"/etc/{RLO}") == "file"
    assert display_name(f"a/{LRI}..{PDI}") == "file"


@pytest_twisted.ensureDeferred
async def test_groups_statuses_and_files_are_stored_without_controls(chatd):
    alice, bob = await typed_user(chatd, "alice"), await typed_user(chatd, "bob")
    await typed_friends(alice, "alice", bob, "bob")

    alice.send("GROUP_CREATE", sender="alice", members=["bob"], name=f"{RLO}evil{LRI} group\n")
    created = await alice.payload("GROUP_CREATE_ACK")
    assert created["code"] == 0 and created["name"] == "evil group"
    assert (await bob.payload("GROUP_INVITE"))["group"] == "evil group"

    alice.send("USER_STATUS_UPDATE", username="alice", status=f"{RLO}yzub\x07")
    assert (await alice.payload("USER_STATUS_UPDATE"))["status"] == "yzub"
    assert (await bob.payload("USER_STATUS_UPDATE"))["status"] == "yzub"

    colon = await connect(chatd)
    colon.send_raw(b'{"type": "USER:LOGIN", "data": {"username": "alice", "password": "secret"}}\n')
    colon.send_raw(b'{"type": "GROUP:JOIN_GROUP", "data": "files"}\n')
    picture = base64.b64encode(b"\x89PNG not really").decode()
    frame = {"type": "CHAT:SEND_MESSAGE_IMAGE", "data": {"groupId": "files", "name": f"{RLO}gnp.exe", "data": picture}}
    colon.send_raw(orjson.dumps(frame) + b"\n")
    while True:
        reply = orjson.loads(await colon.line())
        assert reply["type"] != "ERROR", reply
        if reply["type"] == "CHAT:MESSAGE_RETURN_IMAGE":
            break
    assert reply["data"]["file"]["name"] == "gnp.exe"
    http = Http(chatd)
    try:
        _, login = await http.json("POST", "/login", json={"username": "alice", "password": "secret"})
        response, _ = await http.call("GET", reply["data"]["file"]["url"], token=login["token"])
        disposition = response.headers.getRawHeaders(b"Content-Disposition")[0]
        assert b'filename="gnp.exe"' in disposition and b"%E2%80%AE" not in disposition
    finally:
        await http.close()
    await colon.close()
