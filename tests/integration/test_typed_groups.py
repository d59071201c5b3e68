"""Seed 002 groups and seed 000 GROUP_MESSAGE/GROUP_INVITE, over real sockets."""

import pytest_twisted

from chatdaemon import errors
from tests.conftest import of_type, typed_friends, typed_user


async def crew(chatd):
    """lead, with friends ann and ben online; stranger online too."""
    lead, ann, ben, stranger = [await typed_user(chatd, n) for n in ("lead", "ann", "ben", "stranger")]
    await typed_friends(lead, "lead", ann, "ann")
    await typed_friends(lead, "lead", ben, "ben")
    return lead, ann, ben, stranger


@pytest_twisted.ensureDeferred
async def test_create_needs_friends_then_invites_answers_and_group_messages(chatd):
    lead, ann, ben, stranger = await crew(chatd)
    lead.send("GROUP_CREATE", sender="lead", members=["ann", "stranger"], name="Book Club")
    refused = await lead.payload("GROUP_CREATE_ACK")
    assert (refused["code"], refused["not-friends"], refused["name"]) == (
        errors.NOT_ALL_FRIENDS,
        ["stranger"],
        "Book Club",
    )
    await ben.close()  # ben is offline when invited
    lead.send("GROUP_CREATE", sender="lead", members=["ann", "ben"], name="Book Club")
    created = await lead.payload("GROUP_CREATE_ACK")
    assert (created["code"], created["members"], created["name"]) == (0, ["ann", "ben"], "Book Club")
    group_id = created["groupId"]
    invite = await ann.payload("GROUP_INVITE")
    assert invite == {"sender": "lead", "receiver": "ann", "group": "Book Club", "groupId": group_id}
    ann.send("GROUP_INVITE_RESPONSE", sender="lead", receiver="ann", group="Book Club", code=0)
    answer = await lead.payload("GROUP_INVITE_RESPONSE")
    assert (answer["receiver"], answer["groupId"], answer["code"]) == ("ann", group_id, 0)
    # ben gets the invitation at his next login and declines it; the leader hears
    ben = await typed_user(chatd, "ben", register=False)
    assert (await ben.payload("GROUP_INVITE"))["offline"] is True
    ben.send("GROUP_INVITE_RESPONSE", sender="lead", receiver="ben", groupId=group_id, code=errors.INVITE_REJECTED)
    assert (await lead.payload("GROUP_INVITE_RESPONSE"))["code"] == errors.INVITE_REJECTED
    # messages to the group, by GROUP_MESSAGE or TEXT_MESSAGE with the group's name
    lead.send("GROUP_MESSAGE", sender="lead", group="Book Club", content="chapter one")
    assert (await lead.payload("MESSAGE_ACK"))["receiver"] == "Book Club"
    got = await ann.payload("GROUP_MESSAGE")
    assert (got["sender"], got["group"], got["groupId"], got["content"]) == (
        "lead",
        "Book Club",
        group_id,
        "chapter one",
    )
    ann.send("TEXT_MESSAGE", sender="ann", receiver="Book Club", content="loved it")
    assert (await ann.payload("MESSAGE_ACK"))["code"] == 0
    assert (await lead.payload("GROUP_MESSAGE"))["content"] == "loved it"
    ann.send("TEXT_MESSAGE", groupId=group_id, content="by id too")
    assert (await ann.payload("MESSAGE_ACK"))["code"] == 0
    assert (await lead.payload("GROUP_MESSAGE"))["content"] == "by id too"
    assert not of_type("GROUP_MESSAGE", await ben.sync())  # declined: not a member
    stranger.send("GROUP_MESSAGE", group=group_id, content="let me in")
    assert (await stranger.payload("MESSAGE_NACK"))["code"] == errors.NOT_A_MEMBER
    for client in (lead, ann, ben, stranger):
        await client.close()


@pytest_twisted.ensureDeferred
async def test_an_offline_member_gets_group_messages_at_login(chatd):
    lead, ann, _ben, _ = await crew(chatd)
    lead.send("GROUP_CREATE", sender="lead", members=["ann"], name="Night Owls")
    group_id = (await lead.payload("GROUP_CREATE_ACK"))["groupId"]
    await ann.payload("GROUP_INVITE")
    ann.send("GROUP_INVITE_RESPONSE", sender="lead", receiver="ann", groupId=group_id, code=0)
    await lead.payload("GROUP_INVITE_RESPONSE")
    await ann.close()
    lead.send("GROUP_MESSAGE", group=group_id, content="while you slept")
    await lead.payload("MESSAGE_ACK")
    ann = await typed_user(chatd, "ann", register=False)
    missed = await ann.payload("OFFLINE_MESSAGE")
    assert (missed["content"], missed["groupId"], missed["sender"]) == ("while you slept", group_id, "lead")
    await lead.close()
    await ann.close()


@pytest_twisted.ensureDeferred
async def test_leader_change_leave_and_remove_with_every_refusal(chatd):
    lead, ann, ben, stranger = await crew(chatd)
    lead.send("GROUP_CREATE", sender="lead", members=["ann", "ben"], name="Team")
    group_id = (await lead.payload("GROUP_CREATE_ACK"))["groupId"]
    for member in (ann, ben):
        await member.payload("GROUP_INVITE")
        member.send("GROUP_INVITE_RESPONSE", sender="lead", groupId=group_id, code=0)
        await lead.payload("GROUP_INVITE_RESPONSE")
    # refusals
    ann.send("GROUP_REMOVE", sender="ann", group="Team")
    assert (await ann.payload("GROUP_REMOVE_ACK"))["code"] == errors.NOT_LEADER
    ann.send("GROUP_LEADER_CHANGE", sender="ann", group="Team", newLeader="ann")
    assert (await ann.payload("GROUP_LEADER_CHANGE_ACK"))["code"] == errors.NOT_LEADER
    lead.send("GROUP_LEADER_CHANGE", sender="lead", group="Team", newLeader="stranger")
    assert (await lead.payload("GROUP_LEADER_CHANGE_ACK"))["code"] == errors.NOT_A_MEMBER
    stranger.send("GROUP_LEAVE", sender="stranger", group=group_id)
    assert (await stranger.payload("GROUP_LEAVE_ACK"))["code"] == errors.NOT_A_MEMBER
    stranger.send("GROUP_LEAVE", sender="stranger", group="No Such Group")
    assert (await stranger.payload("GROUP_LEAVE_ACK"))["code"] == errors.NO_SUCH_ROOM
    lead.send("GROUP_INVITE", receiver="stranger", groupId=group_id)
    assert (await lead.payload("GROUP_INVITE"))["code"] == errors.NOT_FRIENDS
    # the leader hands over: everyone is told
    lead.send("GROUP_LEADER_CHANGE", sender="lead", group="Team", newLeader="ann")
    ack = await lead.payload("GROUP_LEADER_CHANGE_ACK")
    assert (ack["code"], ack["newLeader"], ack["groupId"]) == (0, "ann", group_id)
    for member in (ann, ben):  # the leader who asked gets the ACK instead
        change = await member.payload("GROUP_LEADER_CHANGE")
        assert (change["sender"], change["newLeader"], change["group"]) == ("lead", "ann", "Team")
    # a member leaves: acked, the others are told
    ben.send("GROUP_LEAVE", sender="ben", group="Team")
    assert (await ben.payload("GROUP_LEAVE_ACK"))["code"] == 0
    for member in (lead, ann):
        assert await member.payload("GROUP_LEAVE") == {"sender": "ben", "group": "Team", "groupId": group_id}
    # the new leader removes the group: acked, the members are told, it is gone
    ann.send("GROUP_REMOVE", sender="ann", group="Team")
    assert (await ann.payload("GROUP_REMOVE_ACK"))["code"] == 0
    assert await lead.payload("GROUP_REMOVE") == {"sender": "ann", "group": "Team", "groupId": group_id}
    lead.send("GROUP_MESSAGE", group=group_id, content="anyone?")
    assert (await lead.payload("MESSAGE_NACK"))["code"] == errors.NO_SUCH_ROOM
    assert group_id not in chatd.core.state.rooms
    for client in (lead, ann, ben, stranger):
        await client.close()


@pytest_twisted.ensureDeferred
async def test_two_groups_with_one_name_are_told_apart_by_id(chatd):
    lead, ann, _, _ = await crew(chatd)
    ids = []
    for _ in range(2):
        lead.send("GROUP_CREATE", sender="lead", members=[], name="Same")
        ids.append((await lead.payload("GROUP_CREATE_ACK"))["groupId"])
    assert ids[0] != ids[1]
    lead.send("GROUP_MESSAGE", group="Same", content="which one?")
    assert (await lead.payload("MESSAGE_NACK"))["code"] == errors.AMBIGUOUS_GROUP
    lead.send("GROUP_MESSAGE", groupId=ids[1], content="this one")
    assert (await lead.payload("MESSAGE_ACK"))["code"] == 0
    await lead.close()
    await ann.close()
