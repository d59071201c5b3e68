"""Seed 002's MEDIA_MESSAGE handshake both ways, and seed 000's FILE_* frames, over real sockets."""

import base64
import os

import pytest_twisted

from chatdaemon import errors
from tests.conftest import make_config, start_service, typed_friends, typed_user

CHUNK = 20000  # what the test client sends per MEDIA_MESSAGE_DATA


def chunks(data: bytes, size: int = CHUNK) -> list[str]:
    return [base64.b64encode(data[i : i + size]).decode() for i in range(0, len(data), size)] or [""]


async def upload(client, receiver: str, media_id: str, data: bytes, mime: str = "image/png") -> dict:
    client.send("MEDIA_MESSAGE", sender="me", receiver=receiver, mediaId=media_id, mediaType=mime, mediaSize=len(data))
    ack = await client.payload("MEDIA_MESSAGE_ACK")
    assert ack == {"sender": receiver, "receiver": ack["receiver"], "mediaId": media_id, "code": 0}
    parts = chunks(data)
    for index, part in enumerate(parts, 1):
        client.send(
            "MEDIA_MESSAGE_DATA",
            receiver=receiver,
            mediaId=media_id,
            data=part,
            chunkIndex=index,
            totalChunks=len(parts),
        )
        assert (await client.payload("MEDIA_MESSAGE_DATA_ACK"))["chunkIndex"] == index
    done = await client.payload("MEDIA_MESSAGE_COMPLETE")
    assert done["code"] == 0 and done["mediaId"] == media_id
    client.send("MEDIA_MESSAGE_COMPLETE_ACK", mediaId=media_id, code=0)
    return done


async def download(client, offer: dict) -> bytes:
    """Drive the server -> client leg for a MEDIA_MESSAGE the client received."""
    client.send(
        "MEDIA_MESSAGE_ACK", sender=client_name(offer), receiver=offer["sender"], mediaId=offer["mediaId"], code=0
    )
    data = b""
    while True:
        chunk = await client.payload("MEDIA_MESSAGE_DATA")
        data += base64.b64decode(chunk["data"])
        client.send("MEDIA_MESSAGE_DATA_ACK", mediaId=offer["mediaId"], chunkIndex=chunk["chunkIndex"], code=0)
        if chunk["chunkIndex"] == chunk["totalChunks"]:
            break
    client.send("MEDIA_MESSAGE_COMPLETE", mediaId=offer["mediaId"], code=0)
    assert (await client.payload("MEDIA_MESSAGE_COMPLETE_ACK"))["code"] == 0
    return data


def client_name(offer: dict) -> str:
    return offer["receiver"]


@pytest_twisted.ensureDeferred
async def test_a_file_to_a_user_goes_up_in_chunks_and_down_in_chunks_byte_for_byte(chatd):
    alice, bob = await typed_user(chatd, "alice"), await typed_user(chatd, "bob")
    data = os.urandom(3 * CHUNK + 123)
    done = await upload(alice, "bob", "photo-1", data)
    offer = await bob.payload("MEDIA_MESSAGE")
    assert (offer["sender"], offer["receiver"], offer["mediaType"], offer["mediaSize"]) == (
        "alice",
        "bob",
        "image/png",
        len(data),
    )
    assert offer["mediaId"] == done["fileId"] and offer["messageId"] == done["messageId"]
    assert await download(bob, offer) == data
    # stored on disk by the server's id, never by the client's name
    stored = os.path.join(chatd.config.data_dir, "files", done["fileId"])
    with open(stored, "rb") as f:
        assert f.read() == data
    assert not [n for n in os.listdir(os.path.join(chatd.config.data_dir, "files")) if "photo" in n]
    await alice.close()
    await bob.close()


@pytest_twisted.ensureDeferred
async def test_a_file_to_a_group_reaches_an_offline_member_at_login(chatd):
    lead, ann = await typed_user(chatd, "lead"), await typed_user(chatd, "ann")
    await typed_friends(lead, "lead", ann, "ann")
    lead.send("GROUP_CREATE", sender="lead", members=["ann"], name="Pics")
    group_id = (await lead.payload("GROUP_CREATE_ACK"))["groupId"]
    await ann.payload("GROUP_INVITE")
    ann.send("GROUP_INVITE_RESPONSE", sender="lead", groupId=group_id, code=0)
    await lead.payload("GROUP_INVITE_RESPONSE")
    await ann.close()
    data = b"GIF89a" + os.urandom(5000)
    await upload(lead, "Pics", "g1", data, mime="image/gif")
    ann = await typed_user(chatd, "ann", register=False)
    offer = await ann.payload("MEDIA_MESSAGE")
    assert (offer["offline"], offer["groupId"], offer["mediaType"]) == (True, group_id, "image/gif")
    assert await download(ann, offer) == data
    await lead.close()
    await ann.close()


@pytest_twisted.ensureDeferred
async def test_repeated_and_missing_chunks(chatd):
    alice, bob = await typed_user(chatd, "alice"), await typed_user(chatd, "bob")
    data = os.urandom(3 * CHUNK)
    parts = chunks(data)
    alice.send("MEDIA_MESSAGE", receiver="bob", mediaId="m", mediaType="application/pdf", mediaSize=len(data))
    await alice.payload("MEDIA_MESSAGE_ACK")
    for index in (1, 1, 3):  # chunk 1 twice (idempotent), chunk 2 missing
        alice.send(
            "MEDIA_MESSAGE_DATA", receiver="bob", mediaId="m", data=parts[index - 1], chunkIndex=index, totalChunks=3
        )
        assert (await alice.payload("MEDIA_MESSAGE_DATA_ACK"))["code"] == 0
    failed = await alice.payload("MEDIA_MESSAGE_COMPLETE")
    assert (failed["code"], failed["missing"]) == (errors.INCOMPLETE_MEDIA, [2])
    alice.send("MEDIA_MESSAGE_DATA", receiver="bob", mediaId="m", data=parts[1], chunkIndex=2, totalChunks=3)
    await alice.payload("MEDIA_MESSAGE_DATA_ACK")
    assert (await alice.payload("MEDIA_MESSAGE_COMPLETE"))["code"] == 0
    assert await download(bob, await bob.payload("MEDIA_MESSAGE")) == data
    await alice.close()
    await bob.close()


@pytest_twisted.ensureDeferred
async def test_bad_media_input_gets_codes_and_loses_nothing(data_dir):
    service = await start_service(make_config(data_dir))
    try:
        alice, bob, eve = [await typed_user(service, n) for n in ("alice", "bob", "eve")]
        alice.send(
            "MEDIA_MESSAGE",
            receiver="bob",
            mediaId="big",
            mediaType="video/mp4",
            mediaSize=service.config.files.max_upload_bytes + 1,
        )
        assert (await alice.payload("MEDIA_MESSAGE_ACK"))["code"] == errors.TOO_LARGE
        alice.send("MEDIA_MESSAGE", receiver="nobody", mediaId="x", mediaType="text/plain", mediaSize=3)
        assert (await alice.payload("MEDIA_MESSAGE_ACK"))["code"] == errors.NO_SUCH_USER
        alice.send("MEDIA_MESSAGE", receiver="bob", mediaId="m", mediaType="text/plain", mediaSize=6)
        await alice.payload("MEDIA_MESSAGE_ACK")
        bad = [
            ({"chunkIndex": 0, "totalChunks": 2, "data": "YWJj"}, errors.BAD_CHUNK),  # index out of range
            ({"chunkIndex": 3, "totalChunks": 2, "data": "YWJj"}, errors.BAD_CHUNK),
            ({"chunkIndex": 1, "totalChunks": 2, "data": "not base64!"}, errors.BAD_CHUNK),
            ({"chunkIndex": 1, "totalChunks": 2, "data": base64.b64encode(b"x" * 7).decode()}, errors.TOO_LARGE),
            ({"chunkIndex": "1", "totalChunks": 2, "data": "YWJj"}, errors.BAD_FIELD),
        ]
        for fields, code in bad:
            alice.send("MEDIA_MESSAGE_DATA", receiver="bob", mediaId="m", **fields)
            frame = await alice.frame()
            assert frame["payload"]["code"] == code, (fields, frame)
        # someone else's media id is not theirs to fill
        eve.send("MEDIA_MESSAGE_DATA", receiver="bob", mediaId="m", chunkIndex=1, totalChunks=2, data="YWJj")
        assert (await eve.payload("MEDIA_MESSAGE_DATA_ACK"))["code"] == errors.NO_SUCH_MEDIA
        # and the upload still works after all that
        for index, part in ((1, "YWJj"), (2, "ZGVm")):
            alice.send("MEDIA_MESSAGE_DATA", receiver="bob", mediaId="m", chunkIndex=index, totalChunks=2, data=part)
            assert (await alice.payload("MEDIA_MESSAGE_DATA_ACK"))["code"] == 0
        done = await alice.payload("MEDIA_MESSAGE_COMPLETE")
        assert done["code"] == 0
        assert await download(bob, await bob.payload("MEDIA_MESSAGE")) == b"abcdef"
        # a file in a conversation one is not in cannot be fetched
        eve.send("MEDIA_MESSAGE_ACK", mediaId=done["fileId"], code=0)
        assert (await eve.payload("MEDIA_MESSAGE_DATA"))["code"] == errors.NO_SUCH_MEDIA
        eve.send("MEDIA_MESSAGE_DATA_ACK", mediaId=done["fileId"], chunkIndex=1, code=0)
        assert (await eve.payload("ERROR"))["code"] == errors.NO_SUCH_MEDIA
        for client in (alice, bob, eve):
            await client.close()
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_seed_000_file_request_response_and_transfer_use_the_same_store(chatd):
    alice, bob = await typed_user(chatd, "alice"), await typed_user(chatd, "bob")
    data = os.urandom(45000)
    parts = chunks(data)
    alice.send(
        "FILE_REQUEST",
        transferId="t1",
        receiver="bob",
        fileName="../../etc/passwd",
        fileType="text/plain",
        fileSize=len(data),
    )
    assert await alice.payload("FILE_RESPONSE") == {"transferId": "t1", "code": 0}
    for index, part in enumerate(parts, 1):
        alice.send("FILE_TRANSFER", transferId="t1", chunkIndex=index, totalChunks=len(parts), data=part)
        answer = await alice.payload("FILE_RESPONSE")
        assert (answer["chunkIndex"], answer["code"]) == (index, 0)
    assert answer["complete"] is True
    offer = await bob.payload("MEDIA_MESSAGE")
    assert offer["fileName"] == "passwd" and offer["mediaId"] == answer["fileId"]  # a display name, nothing more
    got, index = b"", 1
    while True:
        bob.send("FILE_REQUEST", fileId=answer["fileId"], chunkIndex=index)
        piece = await bob.payload("FILE_TRANSFER")
        got += base64.b64decode(piece["data"])
        if index == piece["totalChunks"]:
            break
        index += 1
    assert got == data and piece["fileName"] == "passwd"
    bob.send("FILE_REQUEST", fileId=answer["fileId"], chunkIndex=index + 1)
    assert (await bob.payload("FILE_RESPONSE"))["code"] == errors.BAD_CHUNK
    bob.send("FILE_REQUEST", fileId="0" * 32)
    assert (await bob.payload("FILE_RESPONSE"))["code"] == errors.NO_SUCH_MEDIA
    await alice.close()
    await bob.close()
