"""Typed frames for media (seed 002's MEDIA_MESSAGE handshake) and seed 000's FILE_* frames.

Upload (client -> server): MEDIA_MESSAGE -> MEDIA_MESSAGE_ACK; MEDIA_MESSAGE_DATA
-> MEDIA_MESSAGE_DATA_ACK, each; after the last chunk the server sends
MEDIA_MESSAGE_COMPLETE, and the client answers MEDIA_MESSAGE_COMPLETE_ACK.
Download (server -> client): the server sends MEDIA_MESSAGE; the client's
MEDIA_MESSAGE_ACK brings chunk 1, each MEDIA_MESSAGE_DATA_ACK the next; after
the last, the client sends MEDIA_MESSAGE_COMPLETE and gets MEDIA_MESSAGE_COMPLETE_ACK.
FILE_REQUEST/FILE_RESPONSE/FILE_TRANSFER do the same on the same file store,
paced by the client (one FILE_REQUEST per downloaded chunk).

Upload chunks and the client's requests for download chunks are file-transfer frames
(Request.transfer): budgeted by bytes, and chunks may be larger than an ordinary frame.
"""

import base64
import binascii
from collections.abc import Callable

from ... import errors
from ...core import commands as c
from ...core.model import Address
from ...errors import ChatError
from .. import Request
from .frames import envelope, failure, integer, optional_text, text

MAX_DOWNLOADS = 16


def _decode(p: dict, key: str) -> bytes:
    try:
        return base64.b64decode(text(p, key), validate=True)
    except (binascii.Error, ValueError):
        raise ChatError(errors.BAD_CHUNK, f"payload.{key} is not valid base64") from None


def _where(p: dict, receiver: str = "") -> Address:
    """An upload's address: `room` or `groupId`/`group` name a room; else `receiver`, a user or a room."""
    room = optional_text(p, "room") or optional_text(p, "groupId", "group")
    return Address.room(room) if room else Address(receiver or text(p, "receiver"))


def _encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class MediaFrames:
    # state and replies of TypedDialect, which combines these frames
    user: str
    _downloads: dict[str, tuple[int, str]]
    _errors: Callable[[ChatError], list[bytes]]

    # -- upload

    def _on_MEDIA_MESSAGE(self, p: dict) -> Request:
        media, receiver = text(p, "mediaId"), text(p, "receiver")
        size, mime = integer(p, "mediaSize"), optional_text(p, "mediaType") or "application/octet-stream"
        ack = {"sender": receiver, "receiver": self.user, "mediaId": media}
        return Request(
            c.StartUpload(media, _where(p, receiver), optional_text(p, "fileName") or media, mime, size),
            lambda _: [envelope("MEDIA_MESSAGE_ACK", ack | {"code": 0})],
            lambda e: [envelope("MEDIA_MESSAGE_ACK", failure(e, **ack))],
        )

    def _on_MEDIA_MESSAGE_DATA(self, p: dict) -> Request:
        media, index = text(p, "mediaId"), integer(p, "chunkIndex")
        peer = {"sender": p["receiver"]} if isinstance(p.get("receiver"), str) else {}
        ack = peer | {"receiver": self.user, "mediaId": media, "chunkIndex": index}
        command = c.PutChunk(media, index, _decode(p, "data"), integer(p, "totalChunks"))

        def stored(result):
            frames = [envelope("MEDIA_MESSAGE_DATA_ACK", ack | {"code": 0})]
            done = peer | {"receiver": self.user, "mediaId": media}
            if result.message is not None:
                done |= {"code": 0, "fileId": result.file.id, "messageId": result.message.id}
                frames.append(envelope("MEDIA_MESSAGE_COMPLETE", done))
            elif result.missing:
                frames.append(
                    envelope(
                        "MEDIA_MESSAGE_COMPLETE", done | {"code": errors.INCOMPLETE_MEDIA, "missing": result.missing}
                    )
                )
            return frames

        def failed(e: ChatError):
            if e.code == errors.INCOMPLETE_MEDIA:
                return [envelope("MEDIA_MESSAGE_COMPLETE", failure(e, **peer, receiver=self.user, mediaId=media))]
            return [envelope("MEDIA_MESSAGE_DATA_ACK", failure(e, **ack))]

        return Request(command, stored, failed, transfer=True)

    def _on_MEDIA_MESSAGE_COMPLETE_ACK(self, p: dict) -> Request:
        text(p, "mediaId")
        return Request(None, lambda _: [], self._errors)

    # -- download

    def _send_chunk(self, media: str, index: int) -> Request:
        def chunk(result):
            self._downloads[media] = (result.total, result.file.owner)
            payload = {
                "sender": result.file.owner,
                "receiver": self.user,
                "mediaId": media,
                "data": _encode(result.data),
                "chunkIndex": result.index,
                "totalChunks": result.total,
            }
            return [envelope("MEDIA_MESSAGE_DATA", payload)]

        return Request(
            c.ReadChunk(media, index),
            chunk,
            lambda e: [envelope("MEDIA_MESSAGE_DATA", failure(e, mediaId=media, chunkIndex=index))],
            transfer=True,
        )

    def _on_MEDIA_MESSAGE_ACK(self, p: dict) -> Request:
        media = text(p, "mediaId")
        if len(self._downloads) >= MAX_DOWNLOADS and media not in self._downloads:
            raise ChatError(errors.BAD_CHUNK, f"at most {MAX_DOWNLOADS} downloads at a time")
        return self._send_chunk(media, 1)

    def _on_MEDIA_MESSAGE_DATA_ACK(self, p: dict) -> Request:
        media, index = text(p, "mediaId"), integer(p, "chunkIndex")
        download = self._downloads.get(media)
        if download is None:
            raise ChatError(
                errors.NO_SUCH_MEDIA, f"no download of {media!r} in progress: answer its MEDIA_MESSAGE first"
            )
        if index >= download[0]:  # that was the last: the client sends COMPLETE next
            return Request(None, lambda _: [], self._errors, transfer=True)
        return self._send_chunk(media, index + 1)

    def _on_MEDIA_MESSAGE_COMPLETE(self, p: dict) -> Request:
        media = text(p, "mediaId")
        download = self._downloads.pop(media, None)
        if download is None:
            raise ChatError(errors.NO_SUCH_MEDIA, f"no download of {media!r} in progress")
        # seed 002: the download is the upload's flow with the server as sender, so the ack names the file's sender
        payload = {"sender": download[1], "receiver": self.user, "mediaId": media, "code": 0}
        return Request(None, lambda _: [envelope("MEDIA_MESSAGE_COMPLETE_ACK", payload)], self._errors)

    # -- seed 000: FILE_REQUEST (announce an upload, or ask for a chunk of a file), FILE_TRANSFER (a chunk)

    def _on_FILE_REQUEST(self, p: dict) -> Request:
        file_id = optional_text(p, "fileId")
        if file_id:
            index = integer(p, "chunkIndex", 1)

            def chunk(r):
                f = r.file
                payload = {
                    "fileId": f.id,
                    "fileName": f.name,
                    "fileType": f.mime,
                    "fileSize": f.size,
                    "chunkIndex": r.index,
                    "totalChunks": r.total,
                    "data": _encode(r.data),
                }
                return [envelope("FILE_TRANSFER", payload)]

            return Request(
                c.ReadChunk(file_id, index),
                chunk,
                lambda e: [envelope("FILE_RESPONSE", failure(e, fileId=file_id))],
                transfer=True,
            )
        transfer = text(p, "transferId")
        command = c.StartUpload(
            transfer,
            _where(p),
            text(p, "fileName"),
            optional_text(p, "fileType") or "application/octet-stream",
            integer(p, "fileSize"),
        )
        return Request(
            command,
            lambda _: [envelope("FILE_RESPONSE", {"transferId": transfer, "code": 0})],
            lambda e: [envelope("FILE_RESPONSE", failure(e, transferId=transfer))],
        )

    def _on_FILE_TRANSFER(self, p: dict) -> Request:
        transfer, index = text(p, "transferId"), integer(p, "chunkIndex")
        command = c.PutChunk(transfer, index, _decode(p, "data"), integer(p, "totalChunks"))

        def stored(r):
            payload = {"transferId": transfer, "chunkIndex": index, "code": 0}
            if r.message is not None:
                payload |= {"fileId": r.file.id, "messageId": r.message.id, "complete": True}
            elif r.missing:
                payload |= {"code": errors.INCOMPLETE_MEDIA, "missing": r.missing}
            return [envelope("FILE_RESPONSE", payload)]

        return Request(
            command,
            stored,
            lambda e: [envelope("FILE_RESPONSE", failure(e, transferId=transfer, chunkIndex=index))],
            transfer=True,
        )
