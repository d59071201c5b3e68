"""The reference docs name everything the code implements: codes, typed frames, text commands."""

import pathlib
import re

from chatdaemon import errors
from chatdaemon.dialects.text import TextDialect
from chatdaemon.dialects.typed import TypedDialect

DOCS = pathlib.Path(__file__).parents[2] / "docs"


def test_errors_md_lists_exactly_the_codes_of_errors_py():
    rows = re.findall(r"^\| (\d{4}) \| ([A-Z_]+) \|", (DOCS / "errors.md").read_text(), re.MULTILINE)
    documented = {int(code): name for code, name in rows}
    defined = {value: name for name, value in vars(errors).items() if name.isupper() and isinstance(value, int)}
    assert documented == defined
    assert set(errors.MESSAGES) == set(defined)


def test_typed_md_documents_every_frame_the_dialect_handles():
    text = (DOCS / "protocols" / "typed.md").read_text()
    handled = [name[len("_on_") :] for name in dir(TypedDialect) if name.startswith("_on_")]
    assert handled
    missing = [kind for kind in handled if f"`{kind}`" not in text and f"### {kind}" not in text]
    assert not missing


def test_text_md_documents_every_command():
    text = (DOCS / "protocols" / "text.md").read_text()
    commands = [name[len("_cmd_") :] for name in dir(TextDialect) if name.startswith("_cmd_")]
    assert commands
    assert not [c for c in commands if f"/{c}" not in text]


SEED_TYPES = {
    # seed 000 (action codes)
    "AUTH_REQUEST",
    "AUTH_RESPONSE",
    "USER_JOIN",
    "USER_LEAVE",
    "USER_STATUS_UPDATE",
    "TEXT_MESSAGE",
    "SYSTEM_MESSAGE",
    "MESSAGE_ACK",
    "MESSAGE_NACK",
    "FILE_REQUEST",
    "FILE_RESPONSE",
    "FILE_TRANSFER",
    "ERROR",
    "AUTH_ERROR",
    "PING",
    "PONG",
    "OFFLINE_MESSAGE",
    "ENCRYPTED_MESSAGE",
    "USER_TYPING",
    "READ_RECEIPT",
    "METADATA_UPDATE",
    "PROTOCOL_VERSION",
    "BLOCK_USER",
    "UNBLOCK_USER",
    "FEEDBACK",
    "CONNECTION_ESTABLISHED",
    "CONNECTION_CLOSED",
    "SERVER_NOTIFICATION",
    "REQUEST_USER_INFO",
    "RESPONSE_USER_INFO",
    "GROUP_MESSAGE",
    "GROUP_INVITE",
    # seed 002 (message types)
    "REGISTER_REQUEST",
    "REGISTER_RESPONSE",
    "LOGIN_REQUEST",
    "LOGIN_RESPONSE",
    "FRIEND_REQUEST",
    "FRIEND_REQUEST_ACK",
    "FRIEND_REQUEST_RESPONSE",
    "FRIEND_REMOVE",
    "FRIEND_REMOVE_ACK",
    "GROUP_CREATE",
    "GROUP_CREATE_ACK",
    "GROUP_INVITE_RESPONSE",
    "GROUP_LEAVE",
    "GROUP_LEAVE_ACK",
    "GROUP_REMOVE",
    "GROUP_REMOVE_ACK",
    "GROUP_LEADER_CHANGE",
    "GROUP_LEADER_CHANGE_ACK",
    "MEDIA_MESSAGE",
    "MEDIA_MESSAGE_ACK",
    "MEDIA_MESSAGE_DATA",
    "MEDIA_MESSAGE_DATA_ACK",
    "MEDIA_MESSAGE_COMPLETE",
    "MEDIA_MESSAGE_COMPLETE_ACK",
    "USER_LOGOUT",
    "MESSAGE_HISTORY_REQUEST",
    "MESSAGE_HISTORY_RESPONSE",
    "MESSAGE_HISTORY_BEGIN",
    "MESSAGE_HISTORY_DATA",
    "MESSAGE_HISTORY_COMPLETE",
}


def test_every_seed_type_maps_to_a_test_that_uses_it():
    text = (DOCS / "protocols" / "typed.md").read_text()
    table = text[text.index("## Test coverage") :]
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| [0-9, ]+ \| `([^`]+)` \|$", table, re.MULTILINE))
    assert set(rows) == SEED_TYPES
    root = DOCS.parent
    for kind, test in rows.items():
        path, name = test.split("::")
        source = (root / path).read_text()
        assert f"def {name}(" in source, test
        assert f'"{kind}"' in source, (kind, test)


def test_irc_md_documents_every_command_and_the_isupport_tokens():
    from chatdaemon.dialects.irc import CAPS, ISUPPORT, IrcDialect

    text = (DOCS / "protocols" / "irc.md").read_text()
    table = text[text.index("## Every command") : text.index("## What the server sends")]
    commands = [name[len("_on_") :].upper() for name in dir(IrcDialect) if name.startswith("_on_")]
    assert len(commands) >= 20
    assert not [command for command in commands if f"| `{command}" not in table and f"/ `{command}" not in table]
    assert not [token for token in ISUPPORT if token not in text]
    assert not [cap for cap in CAPS if f"| `{cap}`" not in text and f"| `{cap}` (" not in text]


def test_action_md_documents_every_action_the_dialect_handles():
    from chatdaemon.dialects.action import ActionDialect

    text = (DOCS / "protocols" / "action.md").read_text()
    handled = [name[len("_on_") :] for name in dir(ActionDialect) if name.startswith("_on_")]
    assert len(handled) >= 15
    missing = [a for a in handled if f"`{a}`" not in text and f"### {a}" not in text and f'"action": "{a}"' not in text]
    assert not missing
    table = text[text.index("## Every action") :]
    assert not [a for a in handled if f"`{a}`" not in table]


def test_http_md_names_every_dialect_every_endpoint_and_only_tools_debian_installs():
    from chatdaemon.dialects import DIALECTS
    from chatdaemon.dialects.events import EventsDialect
    from chatdaemon.transports.rest import rest_children

    text = (DOCS / "http.md").read_text()
    opening = text.split("\n\n")[1]
    for path in ("`/`", "`/ws`", "`/socket.io/`", "`GET /health`", "`GET /metrics`"):
        assert path in opening, path
    listed = re.search(r"\?dialect=([a-z|]+)`", text).group(1).split("|")
    assert sorted(listed) == sorted(DIALECTS)
    for endpoint in rest_children(None, None):
        assert f" /{endpoint.decode()}" in text, endpoint
    assert "websocat" not in text and "jq " not in text  # neither is in Debian's default install nor ours
    events = (DOCS / "protocols" / "events.md").read_text()
    handled = [name[len("_on_") :] for name in dir(EventsDialect) if name.startswith("_on_")]
    assert [kind for kind in handled if f"`{kind}`" not in events] == []
    assert "`follow`" in events and "`friend`" in events


def test_the_readme_says_how_to_make_an_admin_key_before_using_it():
    readme = (DOCS.parent / "README.md").read_text()
    assert readme.index("ssh-keygen") < readme.index("--admin-keys ~/.ssh/id_ed25519.pub")
