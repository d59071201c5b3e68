"""Typed frames for accounts, presence, profiles, blocks, feedback and the connection itself."""

from collections.abc import Callable
from typing import Any

from ... import __version__, errors
from ...core import commands as c
from ...errors import ChatError
from .. import Request
from .frames import envelope, failure, integer, optional_text, text

PROTOCOL_VERSION = "1.0"


class AccountFrames:
    # state and replies of TypedDialect, which combines these frames
    _sync: dict[str, Any] | None
    _downloads: dict[str, tuple[int, str]]
    _errors: Callable[[ChatError], list[bytes]]

    @staticmethod
    def _credentials(payload: dict, login: bool):
        if login and "sessionKey" in payload:
            return c.Login(session_key=text(payload, "sessionKey"))
        username = text(payload, "username")
        password = text(payload, "passwordHash", "password")
        return c.Login(username, password) if login else c.Register(username, password)

    def _on_REGISTER_REQUEST(self, p: dict) -> Request:
        def failed(e: ChatError):
            if e.code == errors.SERVER_ERROR:
                e = ChatError(errors.REGISTER_SERVER_ERROR, e.message)
            return [envelope("REGISTER_RESPONSE", {"success": False} | failure(e))]

        return Request(
            self._credentials(p, login=False),
            lambda user: [envelope("REGISTER_RESPONSE", {"success": True, "code": 0, "username": user})],
            failed,
        )

    def _login(self, p: dict, ok_type: str, fail_type: str) -> Request:
        def failed(e: ChatError):
            if e.code == errors.SERVER_ERROR:
                e = ChatError(errors.LOGIN_SERVER_ERROR, e.message)
            return [envelope(fail_type, {"success": False} | failure(e))]

        def succeeded(result):
            self.user = result.user
            payload = {"success": True, "code": 0, "username": result.user, "sessionKey": result.session_key}
            return [envelope(ok_type, payload)]

        return Request(self._credentials(p, login=True), succeeded, failed)

    def _on_LOGIN_REQUEST(self, p: dict) -> Request:
        return self._login(p, "LOGIN_RESPONSE", "LOGIN_RESPONSE")

    def _on_AUTH_REQUEST(self, p: dict) -> Request:
        return self._login(p, "AUTH_RESPONSE", "AUTH_ERROR")

    def _on_USER_LOGOUT(self, p: dict) -> Request:
        def logged_out(user):
            self.user, self._sync = "", None
            self._downloads.clear()
            return [envelope("USER_LOGOUT", {"username": user, "code": 0})]

        return Request(c.Logout(), logged_out, self._errors)

    def _on_USER_STATUS_UPDATE(self, p: dict) -> Request:
        return Request(
            c.SetStatus(text(p, "status")),
            lambda r: [envelope("USER_STATUS_UPDATE", {"username": r[0], "status": r[1], "code": 0})],
            self._errors,
        )

    def _on_REQUEST_USER_INFO(self, p: dict) -> Request:
        username = text(p, "username")

        def info(profile):
            payload = {
                "username": profile.username,
                "online": profile.online,
                "status": profile.status,
                "friend": profile.friend,
                "blocked": profile.blocked,
                "metadata": profile.metadata,
                "code": 0,
            }
            return [envelope("RESPONSE_USER_INFO", payload)]

        return Request(
            c.UserInfo(username), info, lambda e: [envelope("RESPONSE_USER_INFO", failure(e, username=username))]
        )

    def _on_METADATA_UPDATE(self, p: dict) -> Request:
        if "value" not in p:
            raise ChatError(errors.BAD_FIELD, "payload.value is required")
        message_id = integer(p, "messageId", 0)

        def updated(event):
            payload = {"key": event.key, "code": 0}
            return [envelope("METADATA_UPDATE", payload | {"messageId": message_id} if message_id else payload)]

        return Request(c.SetMetadata(text(p, "key"), p["value"], message_id), updated, self._errors)

    def _block(self, p: dict, kind: str, command) -> Request:
        return Request(
            command(text(p, "username")),
            lambda name: [envelope(kind, {"username": name, "code": 0})],
            lambda e: [envelope(kind, failure(e, username=p.get("username")))],
        )

    def _on_BLOCK_USER(self, p: dict) -> Request:
        return self._block(p, "BLOCK_USER", c.Block)

    def _on_UNBLOCK_USER(self, p: dict) -> Request:
        return self._block(p, "UNBLOCK_USER", c.Unblock)

    def _on_FEEDBACK(self, p: dict) -> Request:
        rating = p.get("rating")
        if rating is not None:
            rating = integer(p, "rating")
        return Request(
            c.Feedback(text(p, "content", "feedback", "text"), rating),
            lambda _: [envelope("FEEDBACK", {"code": 0})],
            lambda e: [envelope("FEEDBACK", failure(e))],
        )

    def _on_PING(self, p: dict) -> Request:
        return Request(None, lambda _: [envelope("PONG", p)], self._errors)

    def _on_PROTOCOL_VERSION(self, p: dict) -> Request:
        asked = p.get("version")
        compatible = asked is None or str(asked).split(".")[0] == PROTOCOL_VERSION.split(".")[0]
        payload = {
            "version": PROTOCOL_VERSION,
            "supported": [PROTOCOL_VERSION],
            "compatible": compatible,
            "server": f"chatd {__version__}",
        }
        return Request(None, lambda _: [envelope("PROTOCOL_VERSION", payload)], self._errors)

    def _on_CONNECTION_CLOSED(self, p: dict) -> Request:
        reason = optional_text(p, "reason") or "closed by the client"
        return Request(
            None, lambda _: [envelope("CONNECTION_CLOSED", {"code": 0, "reason": reason})], self._errors, close=True
        )
