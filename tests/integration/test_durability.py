"""State survives a restart; a client that stops reading is dropped without stalling anyone."""

import pytest_twisted

from chatdaemon import errors
from tests.conftest import connect, make_config, start_service, text_friends, text_user, typed_user


@pytest_twisted.ensureDeferred
async def test_restart_keeps_users_rooms_members_history_and_pending_offline_messages(data_dir):
    service = await start_service(make_config(data_dir))
    lead = await text_user(service, "lead")
    lead.say("/create crew")
    await lead.text("* created")
    mate = await text_user(service, "mate")
    await text_friends(lead, "lead", mate, "mate")
    await mate.close()
    lead.say("/invite mate crew")
    await lead.text("* invited")
    bob = await typed_user(service, "bob")
    bob.send("USER_JOIN", room="lobby")
    await bob.payload("USER_JOIN")
    lead.say("/join lobby")
    await lead.text("* you are in #lobby")
    await bob.close()
    lead.say("said before the restart")
    lead.say("/msg bob private, before the restart")
    await lead.text("[to bob]")
    await lead.close()
    await service.stopService()

    service = await start_service(make_config(data_dir))
    try:
        assert {"lead", "mate", "bob"} <= set(service.core.state.users)
        crew = service.core.state.rooms["crew"]
        assert (crew.kind, crew.leader, crew.members, crew.invited) == ("group", "lead", {"lead"}, {"mate": "lead"})
        assert service.core.state.friends["lead"] == {"mate"} and service.core.state.friends["mate"] == {"lead"}
        assert service.core.state.rooms["lobby"].members == {"bob", "lead"}
        # the pending messages reach bob, once, in order
        bob = await typed_user(service, "bob", register=False)
        first, second = await bob.payload("OFFLINE_MESSAGE"), await bob.payload("OFFLINE_MESSAGE")
        assert (first["room"], first["content"]) == ("lobby", "said before the restart")
        assert (second["receiver"], second["content"]) == ("bob", "private, before the restart")
        assert first["messageId"] < second["messageId"]
        # the pending invitation reaches mate
        mate = await connect(service)
        mate.say("/login mate secret")
        assert (await mate.text("* lead invites")).endswith("/accept crew or /decline crew")
        # history is intact
        mate.say("/join lobby")
        await mate.text("* you are in")
        mate.say("/history lobby")
        assert (await mate.text("[")).endswith("<lead> said before the restart")
        # and new ids keep growing
        bob.send("TEXT_MESSAGE", receiver="lobby", content="after")
        assert (await bob.payload("MESSAGE_ACK"))["messageId"] > second["messageId"]
        await bob.close()
        await mate.close()
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_client_that_stops_reading_is_dropped_and_others_keep_chatting(data_dir):
    service = await start_service(
        make_config(data_dir, outbound_buffer_bytes=64 * 1024, slow_consumer_grace=0.5, max_message_chars=4000)
    )
    try:
        sender, reader, sleeper = [await typed_user(service, n) for n in ("sender", "reader", "sleeper")]
        for client in (sender, reader, sleeper):
            client.send("USER_JOIN", room="busy")
            await client.payload("USER_JOIN")
        sleeper.transport.pauseProducing()  # stops reading: its socket buffers fill up
        body = "x" * 3900
        sent = 0
        while service.bus.online("sleeper"):
            assert sent < 20000, "the sleeper was never dropped"
            for _ in range(50):
                sender.send("TEXT_MESSAGE", receiver="busy", content=body)
            for _ in range(50):
                assert (await sender.payload("MESSAGE_ACK"))["code"] == 0
            sent += 50
            for _ in range(50):
                assert (await reader.payload("TEXT_MESSAGE"))["content"] == body
        # the others were never stalled: every message reached the reader, and chat goes on
        sender.send("TEXT_MESSAGE", receiver="busy", content="still here")
        assert (await reader.payload("TEXT_MESSAGE"))["content"] == "still here"
        sleeper.transport.resumeProducing()
        await sleeper.closed
        tail = [line for line in sleeper.lines if b'"ERROR"' in line]
        if tail:  # the reason, if the kernel still delivered it before the reset
            assert str(errors.SLOW_CONSUMER).encode() in tail[-1]
        # what the sleeper missed is replayed at its next login (at least once)
        again = await typed_user(service, "sleeper", register=False)
        replayed = []
        while True:
            frame = await again.frame()
            if frame["type"] == "OFFLINE_MESSAGE":
                replayed.append(frame["payload"]["content"])
                if replayed[-1] == "still here":
                    break
        assert replayed[-1] == "still here" and len(replayed) >= 2
        for client in (sender, reader, again):
            await client.close()
    finally:
        await service.stopService()
