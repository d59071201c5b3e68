"""The REST API over real sockets with treq: register, login, conversations, paging, files, auth and body limits."""

import base64

import pytest_twisted

from tests.conftest import typed_user
from tests.wsclient import Http, http_port, raw_handshake  # noqa: F401


async def registered(http, name, password="secret"):
    code, body = await http.json("POST", "/register", json={"username": name, "password": password})
    assert code == 201 and body == {"username": name}
    code, body = await http.json("POST", "/login", json={"username": name, "password": password})
    assert code == 200 and body["username"] == name
    return body["token"]


@pytest_twisted.ensureDeferred
async def test_register_login_conversations_and_paging(chatd):
    http = Http(chatd)
    try:
        token = await registered(http, "rita")
        assert (await http.json("POST", "/register", json={"username": "rita", "password": "x"}))[0] == 409
        code, body = await http.json("POST", "/login", json={"username": "rita", "password": "wrong"})
        assert code == 401 and body["code"] == 2001
        # a typed user (logged in with a REST key) posts 7 messages in a room rita is in
        poster = await typed_user(chatd, "paul")
        poster.send("USER_JOIN", room="lobby")
        await poster.payload("USER_JOIN")
        rita = await typed_user(chatd, "rita", register=False)
        rita.send("USER_JOIN", room="lobby")
        await rita.payload("USER_JOIN")
        for i in range(7):
            poster.send("TEXT_MESSAGE", receiver="lobby", content=f"m{i}")
            await poster.payload("MESSAGE_ACK")
        code, body = await http.json("GET", "/conversations", token=token)
        assert code == 200
        [conv] = body["conversations"]
        assert conv["cid"] == "lobby" and conv["unread"] == 7 and conv["last_message"]["text"] == "m6"
        code, page = await http.json("GET", "/messages?cid=lobby&limit=3", token=token)
        assert code == 200 and [m["text"] for m in page["messages"]] == ["m4", "m5", "m6"] and page["has_more"]
        first = page["messages"][0]["id"]
        code, older = await http.json("GET", f"/messages?cid=lobby&limit=3&before={first}", token=token)
        assert [m["text"] for m in older["messages"]] == ["m1", "m2", "m3"]
        code, newer = await http.json(
            "GET", f"/messages?cid=lobby&limit=2&after={older['messages'][0]['id']}", token=token
        )
        assert [m["text"] for m in newer["messages"]] == ["m2", "m3"]
        # a typed READ_RECEIPT of the fifth marks five read (the sync proves the receipt was handled)
        rita.send("READ_RECEIPT", messageId=page["messages"][0]["id"])
        await rita.sync()
        code, body = await http.json("GET", "/conversations", token=token)
        assert body["conversations"][0]["unread"] == 2
        code, page = await http.json("GET", "/messages?cid=lobby&limit=3", token=token)
        assert page["read_upto"] == page["messages"][0]["id"] and page["messages"][0]["read_by"] == ["rita"]
        # whole pages forward from the first message: after=0 is the start, not "no bound"
        code, start = await http.json("GET", "/messages?cid=lobby&limit=2&after=0", token=token)
        assert [m["text"] for m in start["messages"]] == ["m0", "m1"] and start["has_more"]
        await poster.close()
        await rita.close()
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_auth_failures_and_errors_are_json(chatd):
    http = Http(chatd)
    try:
        for path in ("/conversations", "/messages?cid=lobby", "/files/" + "0" * 32):
            code, body = await http.json("GET", path)
            assert code == 401 and body["code"] == 7021, path
            code, body = await http.json("GET", path, token="forged")
            assert code == 401 and body["code"] == 7021, path
        token = await registered(http, "olga")
        code, body = await http.json("GET", "/messages", token=token)
        assert code == 400 and body["code"] == 7004
        code, body = await http.json("GET", "/messages?cid=nowhere", token=token)
        assert code == 404 and body["code"] == 8002
        code, body = await http.json("GET", "/messages?cid=lobby&limit=abc", token=token)
        assert code == 400
        code, body = await http.json("DELETE", "/conversations", token=token)
        assert code == 405 and body["code"] == 7023
        for method in ("CLIENT", "BODY", "FIELD", "RENDER"):  # names of the endpoint's own helpers
            code, body = await http.json(method, "/login", token=token)
            assert code == 405 and body["code"] == 7023, method
        response, _raw = await http.call("POST", "/login", data=b"{not json")
        assert response.code == 400
        code, body = await http.json("GET", "/health")
        assert code == 200 and body == {"status": "ok"}
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_a_body_over_the_limit_is_refused_with_413(chatd):
    from twisted.internet import endpoints, reactor

    from tests.wsclient import _Raw

    async def send(head: bytes) -> bytes:
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", http_port(chatd))
        proto = await endpoints.connectProtocol(endpoint, _Raw())
        proto.transport.write(head)
        return await proto.done

    answer = await send(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413") and b'"code":7020' in answer
    chunk = b"%x\r\n%s\r\n" % (40000, b"a" * 40000)
    answer = await send(b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 2)
    assert answer.startswith(b"HTTP/1.1 413")


@pytest_twisted.ensureDeferred
async def test_file_download_for_members_only(chatd):
    http = Http(chatd)
    try:
        owner = await typed_user(chatd, "fiona")
        owner.send("USER_JOIN", room="pics")
        await owner.payload("USER_JOIN")
        data = b"\x89PNG fake image bytes"
        owner.send(
            "MEDIA_MESSAGE",
            receiver="pics",
            mediaId="u1",
            mediaType="image/png",
            mediaSize=len(data),
            fileName='../evil "name".png',
        )
        await owner.payload("MEDIA_MESSAGE_ACK")
        owner.send(
            "MEDIA_MESSAGE_DATA", mediaId="u1", chunkIndex=1, totalChunks=1, data=base64.b64encode(data).decode()
        )
        done = await owner.payload("MEDIA_MESSAGE_COMPLETE")
        file_id = done.get("fileId") or done.get("mediaId")
        token = await registered(http, "stranger")
        code, body = await http.json("GET", "/files/" + file_id, token=token)
        assert code == 404 and body["code"] == 8016
        code, login = await http.json("POST", "/login", json={"username": "fiona", "password": "secret"})
        response, raw = await http.call("GET", "/files/" + file_id, token=login["token"])
        assert response.code == 200 and raw == data
        assert response.headers.getRawHeaders("content-type") == ["image/png"]
        disposition = response.headers.getRawHeaders("content-disposition")[0]
        assert (
            disposition.startswith('inline; filename="evil _name_.png"')
            and "filename*=UTF-8''evil%20%22name%22.png" in disposition
        )
        await owner.close()
    finally:
        await http.close()
