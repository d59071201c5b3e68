"""The line transport over TLS, by endpoint string, with a certificate the test makes."""

import pytest_twisted
from twisted.internet import ssl

from tests.conftest import connect, make_certificate, make_config, start_service


@pytest_twisted.ensureDeferred
async def test_typed_and_text_users_chat_over_tls(data_dir, tls_files):
    key, cert, pem = tls_files
    config = make_config(
        data_dir, line=("tcp:0:interface=127.0.0.1", f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}")
    )
    service = await start_service(config)
    try:
        root = ssl.Certificate.loadPEM(pem)
        secure = await connect(service, tls_root=root, index=1)
        secure.send("REGISTER_REQUEST", username="sam", passwordHash="pw")
        await secure.payload("REGISTER_RESPONSE")
        secure.send("LOGIN_REQUEST", username="sam", passwordHash="pw")
        assert (await secure.payload("LOGIN_RESPONSE"))["success"] is True
        secure.send("USER_JOIN", room="vault")
        await secure.payload("USER_JOIN")
        plain = await connect(service, index=0)
        plain.say("/register pat pw")
        await plain.text("* registered")
        plain.say("/login pat pw")
        await plain.text("* welcome")
        plain.say("/join vault")
        await plain.text("* you are in")
        plain.say("over plain TCP")
        got = await secure.payload("TEXT_MESSAGE")
        assert got["content"] == "over plain TCP" and got["sender"] == "pat"
        secure.send("TEXT_MESSAGE", receiver="vault", content="over TLS")
        assert await plain.text("[") == "[#vault] <sam> over TLS"
        await secure.close()
        await plain.close()
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_client_that_does_not_trust_the_certificate_is_refused(data_dir, tls_files, tmp_path):
    key, cert, _ = tls_files
    service = await start_service(
        make_config(data_dir, line=(f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",))
    )
    try:
        stranger = make_certificate(tmp_path / "stranger")[2]
        client = await connect(service, tls_root=ssl.Certificate.loadPEM(stranger))
        client.send("PING")
        await client.closed  # the handshake fails: nothing is ever answered
        assert not client.lines
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_connection_the_server_closes_over_tls_is_closed(data_dir, tls_files):
    """TLS sends its close alert only once the session no longer produces: /quit must still end the connection."""
    key, cert, pem = tls_files
    service = await start_service(
        make_config(data_dir, line=(f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",))
    )
    try:
        client = await connect(service, tls_root=ssl.Certificate.loadPEM(pem))
        client.say("/quit")
        assert await client.text("* bye") == "* bye"
        await client.closed
    finally:
        await service.stopService()
