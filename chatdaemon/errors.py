"""The one error type of the core, and the table of its stable codes.

Codes 1xxx-6xxx are seed 002's own tables (chatd never sends 1001, "authentication
failed": a registration fails with 1002, 1003 or 7008); codes from 7000 on are chatd's,
grouped by thousands: 7xxx bad requests, 8xxx chat rules, 9xxx server faults.
docs/errors.md lists every code; a unit test keeps the two in step.
"""

# seed 002: registration, login
USER_EXISTS = 1002
REGISTER_SERVER_ERROR = 1003
INVALID_CREDENTIALS = 2001
ALREADY_LOGGED_IN = 2002
USER_NOT_FOUND = 2003
LOGIN_SERVER_ERROR = 2004
FRIEND_USER_NOT_FOUND = 3001
FRIEND_SERVER_ERROR = 3002
FRIEND_REJECTED = 3004  # an answer, not an error
NOT_ALL_FRIENDS = 4001
INVITE_REJECTED = 5001  # an answer, not an error
NO_HISTORY = 6001

# 7xxx: the request itself is wrong
BAD_JSON = 7001
BAD_FRAME = 7002
UNKNOWN_TYPE = 7003
BAD_FIELD = 7004
LINE_TOO_LONG = 7005
NOT_LOGGED_IN = 7007
BAD_NAME = 7008
IDLE_TIMEOUT = 7009
TOO_MANY_ERRORS = 7010
SLOW_CONSUMER = 7011
SHUTTING_DOWN = 7012
BANNED = 7013
KICKED = 7014
TOO_MANY_CONNECTIONS = 7015
ANNOUNCEMENT = 7016
ROOM_DELETED = 7017
OPERATORS_ONLY = 7018
BODY_TOO_LARGE = 7020
UNAUTHORIZED = 7021
NOT_FOUND = 7022
METHOD_NOT_ALLOWED = 7023
BAD_MEDIA = 7024
# 7030-7039: abuse controls (core/throttle.py, the HTTP deadlines)
TOO_MANY_ATTEMPTS = 7030
TOO_MANY_REGISTRATIONS = 7031
REQUEST_TIMEOUT = 7032
FRAME_TIMEOUT = 7050

# 8xxx: the request is well formed but the chat rules refuse it
NO_SUCH_USER = 8001
NO_SUCH_ROOM = 8002
NOT_A_MEMBER = 8003
PRIVATE_ROOM = 8004
BAD_CONTENT = 8005
SELF_MESSAGE = 8006
NAME_TAKEN = 8007
ALREADY_MEMBER = 8008
NOT_INVITED = 8009
NOT_LEADER = 8010
ALREADY_FRIENDS = 8011
NO_FRIEND_REQUEST = 8012
NOT_FRIENDS = 8013
NOT_BLOCKED = 8014
AMBIGUOUS_GROUP = 8015
NO_SUCH_MEDIA = 8016
BAD_CHUNK = 8017
INCOMPLETE_MEDIA = 8018
TOO_LARGE = 8019
NO_SUCH_MESSAGE = 8020
NOT_AUTHOR = 8021
# 8030-8039: the action dialect's character-count handshake
NO_SUCH_TRANSACTION = 8030
COUNT_NOT_CONFIRMED = 8031
HANDSHAKE_TIMEOUT = 8032
TOO_MANY_PENDING = 8033
MESSAGE_DELETED = 8040
NOT_EDITABLE = 8041
BAD_REACTION = 8042
NO_SUCH_REACTION = 8043

# 9xxx: the server could not do it
SERVER_ERROR = 9001
# 9010-9019: a cluster's shared services
STORAGE_UNAVAILABLE = 9010
# 9020-9029: storage that answers but cannot take more
STORAGE_UNWRITABLE = 9020
FILE_SPACE_FULL = 9021

MESSAGES = {
    USER_EXISTS: "user already exists",
    REGISTER_SERVER_ERROR: "server error during registration",
    INVALID_CREDENTIALS: "invalid credentials",
    ALREADY_LOGGED_IN: "this connection is already logged in",
    USER_NOT_FOUND: "user not found",
    LOGIN_SERVER_ERROR: "server error during login",
    FRIEND_USER_NOT_FOUND: "user not found",
    FRIEND_SERVER_ERROR: "server error",
    FRIEND_REJECTED: "friend request rejected",
    NOT_ALL_FRIENDS: "not all members are friends",
    INVITE_REJECTED: "invitation rejected",
    NO_HISTORY: "no history found",
    BAD_JSON: "frame is not valid UTF-8 JSON",
    BAD_FRAME: "frame is not an object of this dialect",
    UNKNOWN_TYPE: "unknown message type",
    BAD_FIELD: "a field is missing or has the wrong type",
    LINE_TOO_LONG: "line exceeds the maximum length",
    NOT_LOGGED_IN: "log in first",
    BAD_NAME: "names are 1-32 letters, digits, '_', '.' or '-'",
    IDLE_TIMEOUT: "idle for too long",
    TOO_MANY_ERRORS: "too many bad frames",
    SLOW_CONSUMER: "client is not reading its messages",
    SHUTTING_DOWN: "server is shutting down",
    BANNED: "this account is banned",
    KICKED: "disconnected by the operators",
    TOO_MANY_CONNECTIONS: "too many connections from your address",
    ANNOUNCEMENT: "a message from the operators",
    ROOM_DELETED: "the room was deleted by the operators",
    OPERATORS_ONLY: "only the operators may do that",
    BODY_TOO_LARGE: "request body too large",
    UNAUTHORIZED: "a valid session key is required (Authorization: Bearer KEY)",
    NOT_FOUND: "no such resource",
    METHOD_NOT_ALLOWED: "method not allowed here",
    BAD_MEDIA: "media data is not valid base64",
    TOO_MANY_ATTEMPTS: "too many failed logins: try again later",
    TOO_MANY_REGISTRATIONS: "too many new accounts: try again later",
    REQUEST_TIMEOUT: "the request did not arrive in time",
    FRAME_TIMEOUT: "a large frame took too long to arrive",
    NO_SUCH_USER: "no such user",
    NO_SUCH_ROOM: "no such room",
    NOT_A_MEMBER: "not a member of this room",
    PRIVATE_ROOM: "this room is a private group",
    BAD_CONTENT: "message is empty or too long",
    SELF_MESSAGE: "cannot send a direct message to yourself",
    NAME_TAKEN: "that name is already taken",
    ALREADY_MEMBER: "already a member",
    NOT_INVITED: "no invitation to this group",
    NOT_LEADER: "only the group leader may do that",
    ALREADY_FRIENDS: "already friends",
    NO_FRIEND_REQUEST: "no such friend request",
    NOT_FRIENDS: "not friends",
    NOT_BLOCKED: "that user is not blocked",
    AMBIGUOUS_GROUP: "several of your groups have that name: use its id",
    NO_SUCH_MEDIA: "no such media or file (or not yours)",
    BAD_CHUNK: "bad chunk: index out of range, wrong total, or not base64",
    INCOMPLETE_MEDIA: "a chunk is missing or the size does not match",
    TOO_LARGE: "the file exceeds the size limit or your quota",
    NO_SUCH_MESSAGE: "no such message",
    NOT_AUTHOR: "only the author may do that to a message",
    NO_SUCH_TRANSACTION: "no message is waiting with that transaction_id",
    COUNT_NOT_CONFIRMED: "the character count was not confirmed: message dropped",
    HANDSHAKE_TIMEOUT: "no confirm_count in time: message dropped",
    TOO_MANY_PENDING: "too many messages waiting for confirm_count",
    MESSAGE_DELETED: "that message was deleted",
    NOT_EDITABLE: "only text messages can be edited",
    BAD_REACTION: "a reaction is 1-32 printable characters",
    NO_SUCH_REACTION: "no such reaction of yours",
    SERVER_ERROR: "internal server error",
    STORAGE_UNAVAILABLE: "the database is out of reach: nothing was stored; try again shortly",
    STORAGE_UNWRITABLE: "storage is full or read-only: nothing was stored, try again later",
    FILE_SPACE_FULL: "the server's space for files is full",
}


class ChatError(Exception):
    """A refusal with a stable code; every dialect renders it in its own error frame."""

    def __init__(self, code: int, message: str | None = None, **details):
        self.code = code
        self.message = message or MESSAGES[code]
        self.details = details  # e.g. not_friends=[...] for NOT_ALL_FRIENDS
        self.original_type = ""  # the type of the frame refused, where a dialect has one
        super().__init__(code, self.message)

    def __repr__(self) -> str:
        return f"ChatError({self.code}, {self.message!r})"
