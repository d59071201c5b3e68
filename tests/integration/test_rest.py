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


@pytest_twisted.ensureDeferred
async def test_rooms_to_browse_with_counts_and_members_with_who_is_connected(chatd):
    http = Http(chatd)
    try:
        paul = await typed_user(chatd, "paul")
        for room in ("plaza", "quiet"):
            paul.send("USER_JOIN", room=room)
            await paul.payload("USER_JOIN")
        quinn = await typed_user(chatd, "quinn")
        quinn.send("USER_JOIN", room="plaza")
        await quinn.payload("USER_JOIN")
        await quinn.close()
        token = await registered(http, "rita")
        code, body = await http.json("GET", "/rooms", token=token)
        assert code == 200
        assert body["rooms"] == [
            {"cid": "plaza", "kind": "public", "name": "plaza", "members": 2, "online": 1, "joined": False},
            {"cid": "quiet", "kind": "public", "name": "quiet", "members": 1, "online": 1, "joined": False},
        ]
        code, body = await http.json("GET", "/members?cid=plaza", token=token)  # a public room's, to anyone
        assert code == 200 and [m["user"] for m in body["members"]] == ["paul", "quinn"]
        rita = await typed_user(chatd, "rita", register=False)
        rita.send("USER_JOIN", room="plaza")
        await rita.payload("USER_JOIN")
        paul.send("USER_STATUS_UPDATE", status="at lunch")
        await paul.payload("USER_STATUS_UPDATE")
        code, body = await http.json("GET", "/members?cid=plaza", token=token)
        assert code == 200 and body == {
            "cid": "plaza",
            "members": [
                {"user": "paul", "online": True, "status": "at lunch"},
                {"user": "quinn", "online": False, "status": ""},
                {"user": "rita", "online": True, "status": "online"},
            ],
        }
        rooms = (await http.json("GET", "/rooms", token=token))[1]["rooms"]
        assert [(r["cid"], r["members"], r["online"], r["joined"]) for r in rooms] == [
            ("plaza", 3, 2, True),
            ("quiet", 1, 1, False),
        ]
        for path in ("/rooms", "/members?cid=plaza"):
            assert (await http.json("GET", path))[0] == 401
        assert (await http.json("GET", "/members", token=token))[1]["code"] == 7004
        assert (await http.json("GET", "/members?cid=nowhere", token=token))[0] == 404
        await paul.close()
        await rita.close()
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_a_file_uploaded_in_chunks_over_rest_is_posted_and_reaches_every_dialect(chatd):
    http = Http(chatd)
    try:
        token = await registered(http, "ursula")
        viewer = await typed_user(chatd, "victor")
        viewer.send("USER_JOIN", room="pics")
        await viewer.payload("USER_JOIN")
        uploader = await typed_user(chatd, "ursula", register=False)
        uploader.send("USER_JOIN", room="pics")
        await uploader.payload("USER_JOIN")
        data = bytes(range(256)) * 300  # 76,800 bytes: three chunks of at most 32 KiB
        code, started = await http.json(
            "POST",
            "/uploads",
            token=token,
            json={"cid": "pics", "name": "<b>x<b>.bin", "mime": "application/x-demo", "size": len(data)},
        )
        assert code == 201 and started["chunks"] == 3 and started["chunk_bytes"] == 32768
        assert started["missing"] == [1, 2, 3]
        key, step = started["key"], started["chunk_bytes"]
        # announced again with its key: the same upload, to resume
        code, again = await http.json(
            "POST",
            "/uploads",
            token=token,
            json={"cid": "pics", "name": "<b>x<b>.bin", "mime": "application/x-demo", "size": len(data), "key": key},
        )
        assert code == 201 and again["key"] == key
        assert (await http.json("PUT", f"/uploads/{key}/2", token=token, data=data[step : 2 * step]))[0] == 200
        code, body = await http.json("PUT", f"/uploads/{key}/3", token=token, data=data[2 * step :])
        assert code == 200 and body["missing"] == [1]  # the last index, with a chunk missing, names it
        code, done = await http.json("PUT", f"/uploads/{key}/1", token=token, data=data[:step])
        assert code == 201
        message = done["message"]
        assert message["cid"] == "pics" and message["sender"] == "ursula" and message["kind"] == "file"
        assert message["file"]["name"] == "<b>x<b>.bin" and message["file"]["size"] == len(data)
        posted = await viewer.payload("MEDIA_MESSAGE")
        assert posted["fileName"] == "<b>x<b>.bin"
        response, raw = await http.call("GET", message["file"]["url"], token=token)
        assert response.code == 200 and raw == data
        assert response.headers.getRawHeaders("content-disposition")[0].startswith("attachment;")
        # bounds: a chunk past the size, a chunk too big, bad fields, an unknown key, a stranger
        code, started = await http.json("POST", "/uploads", token=token, json={"cid": "pics", "name": "a", "size": 3})
        assert code == 201
        code, body = await http.json("PUT", f"/uploads/{started['key']}/1", token=token, data=b"four")
        assert code == 413 and body["code"] == 8019
        code, body = await http.json("PUT", f"/uploads/{started['key']}/1", token=token, data=b"x" * 40000)
        assert code == 400 and body["code"] == 8017
        code, body = await http.json("PUT", f"/uploads/{started['key']}/2", token=token, data=b"abc")
        assert code == 400 and body["code"] == 8017
        for bad in ({"cid": "pics", "name": "a"}, {"cid": "pics", "name": "a", "size": -1},
                    {"cid": "pics", "name": "a", "size": 1, "mime": "not a type"},
                    {"cid": "pics", "name": "a", "size": 1, "key": "../x"}):  # fmt: skip
            code, body = await http.json("POST", "/uploads", token=token, json=bad)
            assert code == 400 and body["code"] == 7004, bad
        code, body = await http.json("POST", "/uploads", token=token, json={"cid": "pics", "name": "a", "size": 10**12})
        assert code == 413 and body["code"] == 8019
        assert (await http.json("PUT", "/uploads/nokey/1", token=token, data=b"x"))[1]["code"] == 8016
        assert (await http.json("PUT", "/uploads/x", token=token, data=b"x"))[0] == 404
        stranger = await registered(http, "walter")
        code, body = await http.json("POST", "/uploads", token=stranger, json={"cid": "pics", "name": "a", "size": 1})
        assert code == 403 and body["code"] == 8003
        assert (await http.json("PUT", f"/uploads/{started['key']}/1", token=stranger, data=b"x"))[1]["code"] == 8016
        await viewer.close()
        await uploader.close()
    finally:
        await http.close()
