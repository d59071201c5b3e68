"""Typed frames for friends and groups (seed 002), and 000's GROUP_INVITE."""

from collections.abc import Callable

from ... import errors
from ...core import commands as c
from ...errors import ChatError
from .. import Request
from .frames import code, envelope, failure, optional_text, text, text_list


def _group_ref(p: dict) -> str:
    return optional_text(p, "groupId") or text(p, "group")


class SocialFrames:
    # state and replies of TypedDialect, which combines these frames
    user: str
    _errors: Callable[[ChatError], list[bytes]]

    # -- public rooms (seed 000's USER_JOIN / USER_LEAVE)

    def _on_USER_JOIN(self, p: dict) -> Request:
        return Request(
            c.JoinRoom(text(p, "room")),
            lambda room: [
                envelope("USER_JOIN", {"username": self.user, "room": room.id, "members": len(room.members), "code": 0})
            ],
            self._errors,
        )

    def _on_USER_LEAVE(self, p: dict) -> Request:
        return Request(
            c.LeaveRoom(text(p, "room")),
            lambda room: [envelope("USER_LEAVE", {"username": self.user, "room": room.id, "code": 0})],
            self._errors,
        )

    # -- friends

    def _on_FRIEND_REQUEST(self, p: dict) -> Request:
        receiver = text(p, "receiver")

        def failed(e: ChatError):
            code_ = errors.FRIEND_SERVER_ERROR if e.code == errors.SERVER_ERROR else e.code
            return [
                envelope(
                    "FRIEND_REQUEST_ACK", failure(ChatError(code_, e.message), sender=self.user, receiver=receiver)
                )
            ]

        return Request(
            c.RequestFriend(receiver),
            lambda r: [envelope("FRIEND_REQUEST_ACK", {"sender": r[0], "receiver": r[1], "code": 0})],
            failed,
        )

    def _on_FRIEND_REQUEST_RESPONSE(self, p: dict) -> Request:
        answer = code(p, (0, errors.FRIEND_REJECTED))
        return Request(c.AnswerFriend(text(p, "sender"), answer == 0), lambda _: [], self._errors)

    def _on_FRIEND_REMOVE(self, p: dict) -> Request:
        friend = text(p, "receiver")
        return Request(
            c.RemoveFriend(friend),
            lambda r: [envelope("FRIEND_REMOVE_ACK", {"sender": r[0], "receiver": r[1], "code": 0})],
            lambda e: [envelope("FRIEND_REMOVE_ACK", failure(e, sender=self.user, receiver=friend))],
        )

    # -- groups

    def _on_GROUP_CREATE(self, p: dict) -> Request:
        name, members = text(p, "name"), text_list(p, "members")

        def created(room):
            payload = {"sender": room.leader, "members": members, "name": room.name, "groupId": room.id, "code": 0}
            return [envelope("GROUP_CREATE_ACK", payload)]

        def failed(e: ChatError):
            if e.code == errors.NOT_ALL_FRIENDS:
                return [
                    envelope(
                        "GROUP_CREATE_ACK",
                        failure(e, sender=self.user, **{"not-friends": e.details["not_friends"]}, name=name),
                    )
                ]
            return [envelope("GROUP_CREATE_ACK", failure(e, sender=self.user, members=members, name=name))]

        return Request(c.CreateRoom(name, private=True, invitees=tuple(members)), created, failed)

    def _on_GROUP_INVITE(self, p: dict) -> Request:
        receiver, group = text(p, "receiver"), _group_ref(p)

        def invited(room):
            return [
                envelope(
                    "GROUP_INVITE",
                    {"sender": self.user, "receiver": receiver, "group": room.name, "groupId": room.id, "code": 0},
                )
            ]

        return Request(
            c.Invite(group, receiver),
            invited,
            lambda e: [envelope("GROUP_INVITE", failure(e, sender=self.user, receiver=receiver, group=group))],
        )

    def _on_GROUP_INVITE_RESPONSE(self, p: dict) -> Request:
        answer = code(p, (0, errors.INVITE_REJECTED))
        return Request(c.AnswerInvite(_group_ref(p), answer == 0), lambda _: [], self._errors)

    def _group_ack(self, kind: str, command, p: dict, **extra) -> Request:
        group = _group_ref(p)

        def done(room):
            return [envelope(kind, {"sender": self.user, "group": room.name, "groupId": room.id, **extra, "code": 0})]

        return Request(command, done, lambda e: [envelope(kind, failure(e, sender=self.user, group=group, **extra))])

    def _on_GROUP_LEAVE(self, p: dict) -> Request:
        return self._group_ack("GROUP_LEAVE_ACK", c.LeaveRoom(_group_ref(p)), p)

    def _on_GROUP_REMOVE(self, p: dict) -> Request:
        return self._group_ack("GROUP_REMOVE_ACK", c.DeleteRoom(_group_ref(p)), p)

    def _on_GROUP_LEADER_CHANGE(self, p: dict) -> Request:
        leader = text(p, "newLeader")
        return self._group_ack("GROUP_LEADER_CHANGE_ACK", c.ChangeLeader(_group_ref(p), leader), p, newLeader=leader)
