"""The SSH admin shell over real sockets: Conch as the client in-process, and the real OpenSSH client."""

import dataclasses
import os
import shutil
import stat

import pytest
import pytest_twisted
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch.client.knownhosts import KnownHostsFile
from twisted.conch.endpoints import AuthenticationFailed, SSHCommandClientEndpoint
from twisted.conch.ssh.keys import Key
from twisted.internet import defer, reactor
from twisted.internet.error import ConnectionDone, ProcessTerminated
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python.filepath import FilePath

from chatdaemon.transports.admin import HOST_KEY_FILE
from tests.conftest import connect, make_config, need, start_service, text_user, typed_user

LOOPBACK = "tcp:0:interface=127.0.0.1"


def new_key() -> Key:
    return Key(ed25519.Ed25519PrivateKey.generate())


class Output(Protocol):
    """A command's output; `done` fires with (text, exit status) when the channel closes."""

    def __init__(self):
        self.data = b""
        self.done = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason) -> None:
        status = 0 if reason.check(ConnectionDone) else reason.value.exitCode if reason.check(ProcessTerminated) else -1
        self.done.callback((self.data.decode("utf-8"), status))


@pytest.fixture
def operator_key(tmp_path):
    key = new_key()
    path = tmp_path / "admin_keys"
    path.write_bytes(key.public().toString("openssh") + b" operator@test\n")
    private = tmp_path / "operator_key"
    private.write_bytes(key.toString("openssh"))
    private.chmod(0o600)
    return key, path, private


@pytest_twisted.async_yield_fixture
async def shell(data_dir, operator_key):
    _, keys_path, _ = operator_key
    config = make_config(data_dir, admin=(LOOPBACK,))
    config = dataclasses.replace(
        config, admin_shell=dataclasses.replace(config.admin_shell, authorized_keys=str(keys_path))
    )
    service = await start_service(config)
    yield service
    await service.stopService()


async def run(service, command: str, key: Key, user: bytes = b"admin") -> tuple[str, int]:
    """Run one admin command as `ssh user@host COMMAND` would."""
    known = KnownHostsFile(FilePath(os.path.join(service.config.data_dir, "known_hosts_test")))
    known.addHostKey(b"127.0.0.1", service.admin_factory.publicKeys[b"ssh-ed25519"])
    endpoint = SSHCommandClientEndpoint.newConnection(
        reactor,
        command.encode(),
        user,
        b"127.0.0.1",
        service.listeners.address("admin").port,
        keys=[key],
        knownHosts=known,
    )
    output = Output()
    await endpoint.connect(Factory.forProtocol(lambda: output))
    return await output.done


async def test_stats_and_help_work_and_a_key_not_listed_is_refused(shell, operator_key):
    key = operator_key[0]
    text, status = await run(shell, "stats", key)
    assert status == 0
    assert "connections" in text and "uptime" in text and "messages" in text and "queues" in text
    text, status = await run(shell, "help", key)
    assert status == 0 and "kick USER [REASON]" in text and "python" not in text
    text, status = await run(shell, "frobnicate", key)
    assert status == 1 and "unknown command 'frobnicate'" in text
    with pytest.raises(AuthenticationFailed):
        await run(shell, "stats", new_key())


async def test_a_kicked_user_is_told_why_in_their_own_dialect(shell, operator_key):
    alice = await typed_user(shell, "alice")
    bob = await text_user(shell, "bob")
    text, status = await run(shell, "kick alice please stop spamming", operator_key[0])
    assert (text, status) == ("kicked alice: 1 connections closed\n", 0)
    notice = await alice.payload("SERVER_NOTIFICATION")
    assert notice == {"code": 7014, "message": "please stop spamming"}
    await alice.closed
    await run(shell, "kick bob", operator_key[0])
    assert await bob.text("! 7014") == "! 7014 disconnected by the operators"
    await bob.closed


async def test_a_kicked_text_user_reads_the_notice_once(shell, operator_key):
    bob = await text_user(shell, "bob")
    await run(shell, "kick bob flooding", operator_key[0])
    await bob.closed
    lines = [line.decode() for line in bob.lines]  # everything the server sent, up to the close
    assert [line for line in lines if line.startswith("! ")] == ["! 7014 flooding"], lines


async def test_users_shows_a_status_for_online_users_only(shell, operator_key):
    key = operator_key[0]
    alice = await typed_user(shell, "alice")
    bob = await typed_user(shell, "bob")
    for who in (alice, bob):
        who.send("USER_STATUS_UPDATE", status="on a train")
        assert (await who.payload("USER_STATUS_UPDATE"))["code"] == 0
    await alice.close()
    text, status = await run(shell, "users", key)
    rows = dict(line.split(None, 1) for line in text.splitlines())
    assert status == 0 and rows["alice"] == "offline"  # no saved status shown for someone who is not here
    assert rows["bob"].split() == ["online", "(1", "connection)", "'on", "a", "train'"]
    await bob.close()


async def test_a_banned_user_is_kicked_refused_at_login_and_let_back_by_unban(shell, operator_key):
    key = operator_key[0]
    alice = await typed_user(shell, "alice")
    text, status = await run(shell, "ban alice", key)
    assert status == 0 and "banned alice" in text
    assert (await alice.payload("SERVER_NOTIFICATION"))["code"] == 7013
    await alice.closed
    again = await connect(shell)
    again.send("LOGIN_REQUEST", username="alice", passwordHash="secret")
    assert (await again.payload("LOGIN_RESPONSE"))["code"] == 7013
    text, _ = await run(shell, "users al*", key)
    assert "alice" in text and "BANNED" in text
    await run(shell, "unban alice", key)
    again.send("LOGIN_REQUEST", username="alice", passwordHash="secret")
    assert (await again.payload("LOGIN_RESPONSE"))["code"] == 0
    await again.close()


async def test_broadcast_reaches_every_logged_in_connection_in_its_dialect(shell, operator_key):
    alice = await typed_user(shell, "alice")
    bob = await text_user(shell, "bob")
    text, status = await run(shell, "broadcast maintenance at 22:00 UTC", operator_key[0])
    assert (text, status) == ("sent to 2 users\n", 0)
    assert await alice.payload("SERVER_NOTIFICATION") == {"code": 7016, "message": "maintenance at 22:00 UTC"}
    assert await bob.text("! 7016") == "! 7016 maintenance at 22:00 UTC"
    await alice.close()
    await bob.close()


async def test_rooms_who_and_room_delete(shell, operator_key):
    key = operator_key[0]
    alice = await typed_user(shell, "alice")
    alice.send("USER_JOIN", room="lobby")
    await alice.payload("USER_JOIN")
    alice.send("TEXT_MESSAGE", room="lobby", content="hello")
    await alice.payload("MESSAGE_ACK")
    text, _ = await run(shell, "rooms", key)
    assert "lobby" in text and "1 members, 1 online" in text
    text, _ = await run(shell, "who lobby", key)
    assert "alice online" in text
    text, status = await run(shell, "room delete lobby", key)
    assert status == 0 and "deleted lobby" in text
    assert (await alice.payload("SERVER_NOTIFICATION"))["code"] == 7017
    alice.send("TEXT_MESSAGE", room="lobby", content="anyone?")
    assert (await alice.payload("MESSAGE_NACK"))["code"] == 8002
    assert "lobby" not in shell.core.state.rooms
    text, status = await run(shell, "who lobby", key)
    assert status == 1 and "8002" in text
    await alice.close()


async def test_user_create_passwd_and_delete_go_through_the_core(shell, operator_key):
    key = operator_key[0]
    text, status = await run(shell, "user create carol s3cret pass", key)
    assert (text, status) == ("created carol\n", 0)
    carol = await typed_user(shell, "carol", "s3cret pass", register=False)
    await carol.close()
    text, status = await run(shell, "user create carol other", key)
    assert status == 1 and "1002" in text  # the same rule as a client's registration
    text, _ = await run(shell, "user passwd carol", key)
    new_password = text.split("(password: ")[1].split(")")[0]
    probe = await connect(shell)
    probe.send("LOGIN_REQUEST", username="carol", passwordHash="s3cret pass")
    assert (await probe.payload("LOGIN_RESPONSE"))["code"] == 2001
    probe.send("LOGIN_REQUEST", username="carol", passwordHash=new_password)
    assert (await probe.payload("LOGIN_RESPONSE"))["code"] == 0
    text, status = await run(shell, "user delete carol", key)
    assert (text, status) == ("deleted carol\n", 0)
    assert (await probe.payload("SERVER_NOTIFICATION"))["code"] == 7014
    await probe.closed
    assert "carol" not in shell.core.state.users
    text, status = await run(shell, "user frob carol", key)
    assert status == 1 and text.startswith("usage: user ")


async def test_feedback_sent_by_a_typed_client_is_read_by_the_operator(shell, operator_key):
    text, _ = await run(shell, "feedback", operator_key[0])
    assert text == "no feedback yet\n"
    alice = await typed_user(shell, "alice")
    alice.send("FEEDBACK", content="the dark theme is great")
    assert await alice.payload("FEEDBACK") == {"code": 0}
    text, status = await run(shell, "feedback 5", operator_key[0])
    assert status == 0 and text.startswith("#1 ") and text.endswith(" alice: the dark theme is great\n")
    await alice.close()


async def test_reload_reads_the_admin_keys_again(shell, operator_key):
    key, keys_path, _ = operator_key
    second = new_key()
    with pytest.raises(AuthenticationFailed):
        await run(shell, "stats", second)
    keys_path.write_bytes(keys_path.read_bytes() + second.public().toString("openssh") + b"\n")
    text, status = await run(shell, "reload", key)
    assert status == 0 and f"admin keys: 2 from {keys_path}" in text
    assert (await run(shell, "stats", second))[1] == 0


async def test_the_host_key_is_made_once_in_the_data_dir_readable_by_chatd_only(shell, data_dir):
    path = data_dir / HOST_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Key.fromFile(str(path)).public() == shell.admin_factory.publicKeys[b"ssh-ed25519"]


SSH = shutil.which("ssh")


@pytest.fixture
def needs_openssh():
    need("" if SSH else "NO OPENSSH CLIENT: the real-ssh admin shell tests (apt-get install openssh-client)")


def _ssh_args(service, private, *extra) -> list[str]:
    return [
        "-i",
        str(private),
        "-p",
        str(service.listeners.address("admin").port),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "IdentitiesOnly=yes",
        "-F",
        "/dev/null",
        *extra,
        "admin@127.0.0.1",
    ]


@pytest.mark.usefixtures("needs_openssh")
async def test_the_openssh_client_runs_a_command(shell, operator_key):
    out, err, code = await getProcessOutputAndValue(SSH, [*_ssh_args(shell, operator_key[2]), "stats"], env=os.environ)
    assert code == 0, err
    assert b"connections" in out and b"uptime" in out
    out, err, code = await getProcessOutputAndValue(
        SSH, [*_ssh_args(shell, operator_key[2]), "kick nobody"], env=os.environ
    )
    assert code == 1 and b"8001" in out


@pytest.mark.usefixtures("needs_openssh")
async def test_the_openssh_client_gets_an_interactive_shell_with_a_prompt(shell, operator_key):
    out, err, code = await getProcessOutputAndValue(
        "/bin/sh",
        ["-c", f"printf 'help\\nstats\\nexit\\n' | {SSH} -tt {' '.join(_ssh_args(shell, operator_key[2]))}"],
        env=os.environ,
    )
    assert code == 0, err
    assert b"chatd> " in out and b"kick USER [REASON]" in out and b"uptime" in out
