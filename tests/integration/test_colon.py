"""Seed 004 (colon) over WebSocket and line: every GROUP:*, CHAT:* and USER:* type, media to typed users."""

import base64

import pytest_twisted

from tests.conftest import typed_user
from tests.wsclient import Http, ws_connect


def co(kind, data=None):
    return {"type": kind, "data": data if data is not None else {}}


async def colon_user(service, name, password="secret"):
    client = await ws_connect(service)
    client.send(co("USER:REGISTER", {"username": name, "password": password}))
    assert (await client.next(type="USER:REGISTERED"))["data"]["username"] == name
    client.send(co("USER:LOGIN", {"username": name, "password": password}))
    client.token = (await client.next(type="USER:LOGGED_IN"))["data"]["token"]
    return client


@pytest_twisted.ensureDeferred
async def test_every_colon_flow(chatd):
    a = await colon_user(chatd, "cleo")
    b = await colon_user(chatd, "dora")
    t = await typed_user(chatd, "typo")
    try:
        a.send(co("GROUP:ADD_GROUP", {"name": "books"}))
        assert (await a.next(type="GROUP:GROUP_ADDED"))["data"]["id"] == "books"
        assert (await b.next(type="GROUP:GROUP_ADDED"))["data"]["by"] == "cleo"
        b.send(co("GROUP:GET_ALL_GROUPS"))
        groups = (await b.next(type="GROUP:RETURN_ALL_GROUPS"))["data"]
        assert [g["id"] for g in groups] == ["books"] and groups[0]["joined"] is False
        b.send(co("GROUP:JOIN_GROUP", {"groupId": "books"}))
        assert (await b.next(type="GROUP:USER_JOINED"))["data"] == {"groupId": "books", "username": "dora"}
        assert (await a.next(type="GROUP:USER_JOINED"))["data"] == {"groupId": "books", "username": "dora"}
        t.send("USER_JOIN", room="books")
        await t.payload("USER_JOIN")
        b.send(co("CHAT:START_TYPING", {"groupId": "books"}))
        assert (await a.next(type="CHAT:USER_STARTED_TYPING"))["data"] == {"groupId": "books", "username": "dora"}
        b.send(co("CHAT:STOP_TYPING", {"groupId": "books"}))
        assert (await a.next(type="CHAT:USER_STOPPED_TYPING"))["data"]["username"] == "dora"
        b.send(co("CHAT:SEND_MESSAGE_TEXT", {"groupId": "books", "text": "hi all"}))
        assert (await b.next(type="CHAT:MESSAGE_RETURN_TEXT"))["data"]["text"] == "hi all"
        assert (await a.next(type="CHAT:MESSAGE_RETURN_TEXT"))["data"]["sender"] == "dora"
        assert (await t.payload("TEXT_MESSAGE"))["content"] == "hi all"
        png = b"\x89PNG\r\n\x1a\n tiny"
        for kind, back in (("IMAGE", "IMAGE"), ("AUDIO", "AUDIO"), ("GIF", "GIF")):
            a.send(
                co(
                    f"CHAT:SEND_MESSAGE_{kind}",
                    {"groupId": "books", "data": base64.b64encode(png).decode(), "name": f"x.{kind.lower()}"},
                )
            )
            mine = await a.next(type=f"CHAT:MESSAGE_RETURN_{back}")
            assert mine["data"]["file"]["size"] == len(png)
            assert (await b.next(type=f"CHAT:MESSAGE_RETURN_{back}"))["data"]["file"]["id"] == mine["data"]["file"][
                "id"
            ]
            media = await t.payload("MEDIA_MESSAGE")
            assert media["mediaId"] == mine["data"]["file"]["id"] and media["mediaSize"] == len(png)
        # by reference to a stored file, and the file downloads over REST
        a.send(co("CHAT:SEND_MESSAGE_IMAGE", {"groupId": "books", "fileId": mine["data"]["file"]["id"]}))
        ref = await a.next(type="CHAT:MESSAGE_RETURN_IMAGE")
        http = Http(chatd)
        response, raw = await http.call("GET", ref["data"]["file"]["url"], token=b.token)
        assert response.code == 200 and raw == png
        await http.close()
        a.send(co("CHAT:SEND_MESSAGE_IMAGE", {"groupId": "books", "data": "***"}))
        assert (await a.next(type="ERROR"))["data"]["code"] == 7024
        b.send(co("CHAT:GET_INIT_MESSAGES", {"groupId": "books"}))
        init = (await b.next(type="CHAT:RETURN_INIT_MESSAGES"))["data"]
        assert init["groupId"] == "books" and init["messages"][0]["text"] == "hi all" and len(init["messages"]) == 5
        b.send(co("GROUP:GET_INIT_DATA", {"groupId": "books"}))
        data = (await b.next(type="GROUP:RETURN_INIT_DATA"))["data"]
        assert {m["username"] for m in data["members"]} == {"cleo", "dora", "typo"} and len(data["messages"]) == 5
        b.send(co("USER:REFRESH_PROFILE"))
        assert (await b.next(type="USER:PROFILE_REFRESHED"))["data"] == {"username": "dora", "groups": ["books"]}
        b.send(co("GROUP:DELETE_GROUP", {"groupId": "books"}))
        assert (await b.next(type="ERROR"))["data"]["code"] == 8010
        b.send(co("GROUP:LEAVE_GROUP", {"groupId": "books"}))
        assert (await b.next(type="GROUP:USER_LEFT"))["data"] == {"groupId": "books", "username": "dora"}
        assert (await a.next(type="GROUP:USER_LEFT"))["data"]["username"] == "dora"
        a.send(co("GROUP:DELETE_GROUP", {"groupId": "books"}))
        assert (await a.next(type="GROUP:GROUP_DELETED"))["data"]["groupId"] == "books"
        a.send(co("CHAT:NOPE"))
        assert (await a.next(type="ERROR"))["data"]["code"] == 7003
        again = await ws_connect(chatd)
        again.send(co("USER:LOGIN", {"token": a.token}))
        assert (await again.next(type="USER:LOGGED_IN"))["data"]["username"] == "cleo"
        await again.close()
    finally:
        await a.close()
        await b.close()
        await t.close()


@pytest_twisted.ensureDeferred
async def test_inline_media_over_the_limit_is_refused_and_nothing_is_posted(data_dir):
    import dataclasses

    from chatdaemon.config import Files
    from tests.conftest import make_config, start_service

    service = await start_service(dataclasses.replace(make_config(data_dir), files=Files(inline_max_bytes=8)))
    try:
        a = await colon_user(service, "cleo")
        a.send(co("GROUP:ADD_GROUP", {"name": "pics"}))
        group = (await a.next(type="GROUP:GROUP_ADDED"))["data"]["id"]
        a.send(co("CHAT:SEND_MESSAGE_IMAGE", {"groupId": group, "data": base64.b64encode(b"x" * 9).decode()}))
        assert (await a.next(type="ERROR"))["data"]["code"] == 8019
        a.send(co("CHAT:SEND_MESSAGE_IMAGE", {"groupId": group, "data": base64.b64encode(b"x" * 8).decode()}))
        assert (await a.next(type="CHAT:MESSAGE_RETURN_IMAGE"))["data"]["file"]["size"] == 8
        await a.close()
    finally:
        await service.stopService()
