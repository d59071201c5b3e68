"""Each protocol's five moves, as the load generator needs them.

An adapter knows how to: log in by session key, log in by password, join a room, send a text, and
recognise (by bytes.count over many frames at once, never by parsing each one) an acknowledgement
of its own message and a refusal. Set-up replies (login, join) are rare and are classified one frame
at a time with `classify`.

Every text the load generator sends carries a marker, "~bz<sender>.<microseconds>.<seq>~", so a
receipt is counted by counting b"~bz" and its latency read from the digits that follow.

| protocol | login by key | ack of a send (to the sender) | own echo |
|---|---|---|---|
| typed | LOGIN_REQUEST {sessionKey} | MESSAGE_ACK | none |
| events | CLIENT_AUTH {token} | SERVER_CHAT_MESSAGE_STATUS "sent" | SERVER_CHAT_RECEIVE to the sender |
| colon | USER:LOGIN {token} | CHAT:MESSAGE_RETURN_TEXT carrying its own marker | that same frame |
| action | login {session_key} | {"action":"ack"} after character_count/confirm_count | none |
| irc | PASS/NICK/USER | PONG to a PING sent right after each PRIVMSG | none |
"""

import orjson

MARK = b"~bz"

LOGIN_OK, LOGIN_FAIL, JOIN_OK, JOIN_FAIL = "login_ok", "login_fail", "join_ok", "join_fail"


def marker(sender: int, micros: int, seq: int) -> str:
    return f"~bz{sender}.{micros}.{seq}~"


def own_prefix(sender: int) -> bytes:
    return b"~bz%d." % sender


class Adapter:
    name = ""
    ws_dialect = ""  # the /ws?dialect= value
    echo = False  # the sender gets its own message back (events, colon)
    ack = b""  # counted at a sender: one per acknowledged send
    ack_is_echo = False  # the ack is the own echo (colon): count own_prefix instead of `ack`
    refusals: tuple[bytes, ...] = ()
    handshake = False  # action: each send needs a confirm_count
    password_login = True
    raw = False  # frames are written as they are (IRC, Redis), not as JSON lines or WebSocket messages
    separate_publisher = False  # a member cannot send on its receiving connection (Redis pub/sub)
    durable = True  # an ack means the message is stored

    def login_key(self, name: str, key: str) -> bytes:
        raise NotImplementedError

    def login_password(self, name: str, password: str) -> bytes:
        raise NotImplementedError

    def join(self, room: str, me: str) -> bytes:
        raise NotImplementedError

    def send(self, room: str, text: str, seq: int, direct: bool) -> bytes:
        raise NotImplementedError

    def classify(self, frame: bytes, me: str) -> str | None:
        raise NotImplementedError

    def confirm(self, transaction_id: bytes) -> bytes:
        """action: the confirm_count for a send's character_count."""
        raise NotImplementedError

    def send_open(self, room: str, text: str, direct: bool) -> bytes:
        """IRC: a send without the PING that acknowledges it (open loop)."""
        raise NotImplementedError


def _j(obj) -> bytes:
    return orjson.dumps(obj)


class Typed(Adapter):
    name = ws_dialect = "typed"
    ack = b'"MESSAGE_ACK"'
    refusals = (b'"MESSAGE_NACK"', b'"type":"ERROR"', b'"CONNECTION_CLOSED"')

    def login_key(self, name: str, key: str) -> bytes:
        return _j({"type": "LOGIN_REQUEST", "timestamp": 0, "payload": {"sessionKey": key}})

    def login_password(self, name: str, password: str) -> bytes:
        return _j({"type": "LOGIN_REQUEST", "timestamp": 0, "payload": {"username": name, "passwordHash": password}})

    def join(self, room: str, me: str) -> bytes:
        return _j({"type": "USER_JOIN", "timestamp": 0, "payload": {"room": room}})

    def send(self, room: str, text: str, seq: int, direct: bool) -> bytes:
        target = {"receiver": room} if direct else {"room": room}
        return _j({"type": "TEXT_MESSAGE", "timestamp": 0, "payload": {**target, "content": text}})

    def classify(self, frame: bytes, me: str) -> str | None:
        if b'"LOGIN_RESPONSE"' in frame:
            return LOGIN_OK if b'"success":true' in frame else LOGIN_FAIL
        if b'"USER_JOIN"' in frame and b'"code":0' in frame:
            return JOIN_OK
        if b'"type":"ERROR"' in frame or b'"CONNECTION_CLOSED"' in frame:
            return JOIN_FAIL
        return None


class Events(Adapter):
    name = ws_dialect = "events"
    echo = True
    ack = b'"status":"sent"'
    refusals = (b'"SERVER_ERROR"',)

    def login_key(self, name: str, key: str) -> bytes:
        return _j({"event": "CLIENT_AUTH", "data": {"token": key}})

    def login_password(self, name: str, password: str) -> bytes:
        return _j({"event": "CLIENT_AUTH", "data": {"username": name, "password": password}})

    def join(self, room: str, me: str) -> bytes:
        return _j({"event": "CLIENT_CHAT_JOIN", "data": {"cid": room}})

    def send(self, room: str, text: str, seq: int, direct: bool) -> bytes:
        return _j({"event": "CLIENT_CHAT_SEND", "data": {"cid": room, "text": text, "tempId": seq}})

    def classify(self, frame: bytes, me: str) -> str | None:
        if b'"SERVER_AUTH_OK"' in frame:
            return LOGIN_OK
        if b'"SERVER_CHAT_JOINED"' in frame:
            return JOIN_OK
        if b'"SERVER_ERROR"' in frame:
            return LOGIN_FAIL if b'"CLIENT_AUTH"' in frame or b'"event"' not in frame else JOIN_FAIL
        return None


class Colon(Adapter):
    name = ws_dialect = "colon"
    echo = True
    ack_is_echo = True
    refusals = (b'"type":"ERROR"',)

    def login_key(self, name: str, key: str) -> bytes:
        return _j({"type": "USER:LOGIN", "data": {"token": key}})

    def login_password(self, name: str, password: str) -> bytes:
        return _j({"type": "USER:LOGIN", "data": {"username": name, "password": password}})

    def join(self, room: str, me: str) -> bytes:
        return _j({"type": "GROUP:JOIN_GROUP", "data": {"groupId": room}})

    def send(self, room: str, text: str, seq: int, direct: bool) -> bytes:
        target = {"to": room} if direct else {"groupId": room}
        return _j({"type": "CHAT:SEND_MESSAGE_TEXT", "data": {**target, "text": text}})

    def classify(self, frame: bytes, me: str) -> str | None:
        if b'"USER:LOGGED_IN"' in frame:
            return LOGIN_OK
        if b'"GROUP:USER_JOINED"' in frame and b'"username":"%s"' % me.encode() in frame:
            return JOIN_OK
        if b'"type":"ERROR"' in frame:
            return LOGIN_FAIL if b'"USER:LOGIN"' in frame else JOIN_FAIL
        return None


class Action(Adapter):
    name = ws_dialect = "action"
    ack = b'{"action":"ack"'
    refusals = (b'{"action":"error"',)
    handshake = True
    count_frame = b'"action":"character_count"'

    def login_key(self, name: str, key: str) -> bytes:
        return _j({"action": "login", "data": {"session_key": key}})

    def login_password(self, name: str, password: str) -> bytes:
        return _j({"action": "login", "data": {"chatid": name, "password": password}})

    def join(self, room: str, me: str) -> bytes:
        return _j({"action": "join_room", "data": {"room_id": room}})

    def send(self, room: str, text: str, seq: int, direct: bool) -> bytes:
        return _j({"action": "send_message", "data": {"room_id": room, "content": text}})

    def confirm(self, transaction_id: bytes) -> bytes:
        return b'{"action":"confirm_count","data":{"transaction_id":"%s","confirm":true}}' % transaction_id

    def classify(self, frame: bytes, me: str) -> str | None:
        if b'"login_success"' in frame:
            return LOGIN_OK
        if b'"login_fail"' in frame:
            return LOGIN_FAIL
        if b'"action":"join_room"' in frame:
            return JOIN_OK if b'"status":"success"' in frame else JOIN_FAIL
        if b'"action":"error"' in frame:
            return JOIN_FAIL
        return None


class Irc(Adapter):
    """IRC (RFC 1459/2812): rooms are channels "#room", a send is PRIVMSG followed by PING (its PONG is the ack)."""

    name = "irc"
    raw = True
    durable = False
    ack = b" PONG "
    refusals = (b" 404 ", b" 403 ", b" 401 ", b"\nERROR ", b" 433 ")
    password_login = False

    def __init__(self, password: str = "", oper: str = "") -> None:
        # PASS is sent when set (Twisted Words wants one; ngircd refuses one it does not expect)
        self.password = password
        # "NAME:PASSWORD": become an operator and set user mode +F (ngircd's relaxed flood control)
        self.oper = oper

    def login_key(self, name: str, key: str) -> bytes:
        n = name.encode()
        login = b"NICK %s\r\nUSER %s 0 * :chatd-bench\r\n" % (n, n)
        if self.password:
            login = b"PASS %s\r\n" % self.password.encode() + login
        if self.oper:
            oper_name, _, oper_password = self.oper.partition(":")
            login += b"OPER %s %s\r\nMODE %s +F\r\n" % (oper_name.encode(), oper_password.encode(), n)
        return login

    def join(self, room: str, me: str) -> bytes:
        return b"JOIN #%s\r\n" % room.encode()

    def send(self, room: str, text: str, seq: int, direct: bool) -> bytes:
        target = room if direct else "#" + room
        return b"PRIVMSG %s :%s\r\nPING :%d\r\n" % (target.encode(), text.encode(), seq)

    def send_open(self, room: str, text: str, direct: bool) -> bytes:
        """A PRIVMSG without the PING: the open-loop scenarios need no ack."""
        target = room if direct else "#" + room
        return b"PRIVMSG %s :%s\r\n" % (target.encode(), text.encode())

    def classify(self, frame: bytes, me: str) -> str | None:
        parts = frame.split(b" ", 3)
        if len(parts) >= 2:
            code = parts[1]
            if code == b"001":
                return LOGIN_OK
            if code in (b"433", b"432", b"464", b"465"):
                return LOGIN_FAIL
            if code == b"366":
                return JOIN_OK
            if code in (b"403", b"405", b"471", b"473", b"474", b"475"):
                return JOIN_FAIL
        if frame.startswith(b"ERROR"):
            return LOGIN_FAIL
        return None


def _resp(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


class Redis(Adapter):
    """Redis pub/sub (RESP2): a room is a channel PREFIX + room, a member a SUBSCRIBEd connection.

    A subscribed connection may not PUBLISH, so each sender publishes on a connection of its own, and
    PUBLISH's integer reply is the ack. Redis also delivers to the sender's own subscription: that echo
    is not counted as a delivery. Nothing is ever flushed or written but PUBLISH.
    """

    name = "redis"
    raw = True
    echo = True
    separate_publisher = True
    durable = False
    password_login = False
    ack = b":"  # an integer reply (":N\r\n"): only PUBLISH replies reach a publishing connection
    refusals = (b"-ERR", b"-NOAUTH", b"-WRONGPASS")

    def __init__(self, prefix: str = "chatd-bench:") -> None:
        self.prefix = prefix.encode()

    def login_key(self, name: str, key: str) -> bytes:
        return b"PING\r\n"

    def join(self, room: str, me: str) -> bytes:
        return _resp(b"SUBSCRIBE", self.prefix + room.encode())

    def send(self, room: str, text: str, seq: int, direct: bool) -> bytes:
        return _resp(b"PUBLISH", self.prefix + room.encode(), text.encode())

    def classify(self, frame: bytes, me: str) -> str | None:
        if frame == b"+PONG":
            return LOGIN_OK
        if frame == b"subscribe":
            return JOIN_OK
        if frame.startswith(b"-"):
            return LOGIN_FAIL
        return None


ADAPTERS: dict[str, type[Adapter]] = {a.name: a for a in (Typed, Events, Colon, Action, Irc, Redis)}


def adapter(name: str) -> Adapter:
    return ADAPTERS[name]()
