"""The web page's rooms in headless Chromium: public rooms to browse with their counts, unread counts per
room, delivery marks, the room reopened after a reload, and a notice when the connection drops and comes back.

Needs /usr/bin/chromium and the playwright package (tests/browser.py); skipped, with the reason, without.
"""

import pytest_twisted

from tests.browser import WebUser, browser  # noqa: F401  (the fixture)
from tests.conftest import text_user
from tests.integration.test_web_browser import page_service
from tests.wsclient import http_port

PUBLIC_JS = """() => [...document.querySelectorAll('#public-rooms li.public')]
    .map(li => [li.dataset.cid, li.querySelector('.counts').textContent, !!li.querySelector('button')])"""
UNREAD_JS = """(cid) => document.querySelector('#rooms button[data-cid="' + cid + '"] .unread')?.textContent || ''"""


@pytest_twisted.ensureDeferred
async def test_rooms_to_browse_unread_counts_delivery_marks_and_a_reload_reopens_the_room(data_dir, browser):  # noqa: F811
    service = await page_service(data_dir)
    url = f"http://127.0.0.1:{http_port(service)}/"
    ann = None
    lines = []
    try:
        tom = await text_user(service, "tom")
        lines.append(tom)
        for room in ("plaza", "market"):
            tom.say(f"/join {room}")
            await tom.text("* you are in")
        sue = await text_user(service, "sue")
        lines.append(sue)
        sue.say("/join plaza")
        await sue.text("* you are in")
        await sue.close()
        lines.remove(sue)

        ann = await WebUser(browser, url).open()
        await ann.enter("ann")
        # no room yet: the public ones are listed with their members and who is connected
        await ann.wait_for('#public-rooms li[data-cid="plaza"]')
        assert await ann.evaluate(PUBLIC_JS) == [
            ["market", "1 member · 1 online", True],
            ["plaza", "2 members · 1 online", True],
        ]
        await ann.click("button", "Join #plaza")
        await ann.wait_for('#messages[data-loaded="plaza"]')
        await tom.text("* ann joined #plaza")
        await ann.wait_text("#public-rooms", "3 members · 2 online")
        await ann.click("button", "Join #market")
        await ann.wait_for('#messages[data-loaded="market"]')

        # messages in a room not open count as unread there, until it is opened
        tom.say("/join plaza")
        await tom.text("* you are in")
        tom.say("one for plaza")
        await ann.browser.run(lambda: ann.page.wait_for_function(UNREAD_JS + " === '1'", arg="plaza"))
        tom.say("two for plaza")
        await ann.browser.run(lambda: ann.page.wait_for_function(UNREAD_JS + " === '2'", arg="plaza"))
        assert await ann.evaluate(UNREAD_JS, "market") == ""
        await ann.browser.run(lambda: ann.page.locator('#rooms button[data-cid="plaza"]').click())
        await ann.wait_for('#messages[data-loaded="plaza"]')
        assert [m[1] for m in await ann.messages()] == ["one for plaza", "two for plaza"]
        assert await ann.evaluate(UNREAD_JS, "plaza") == ""

        # one's own message is marked delivered in its head line, not on a row of its own
        await ann.say("hello tom")
        assert await tom.text("[#plaza]") == "[#plaza] <ann> hello tom"
        mark = '#messages li.mine .head .state[data-state="delivered"]'
        await ann.wait_for(mark)
        assert await ann.evaluate(f"() => document.querySelector('{mark}').getAttribute('aria-label')") == "delivered"
        assert await ann.evaluate("() => document.querySelectorAll('#messages li.mine > .state').length") == 0

        # a reload keeps the login and reopens the room, ready to send
        await ann.browser.run(ann.page.reload)
        await ann.wait_for('#messages[data-loaded="plaza"]')
        assert await ann.evaluate("() => document.getElementById('send-button').disabled") is False
        assert [m[1] for m in await ann.messages()] == ["one for plaza", "two for plaza", "hello tom"]
        await ann.say("after the reload")
        assert await tom.text("[#plaza]") == "[#plaza] <ann> after the reload"
        assert ann.problems == []
    finally:
        if ann is not None:
            await ann.close()
        for line in lines:
            await line.close()
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_dropped_connection_is_told_and_what_came_meanwhile_shows_once_it_is_back(data_dir, browser):  # noqa: F811
    service = await page_service(data_dir)
    url = f"http://127.0.0.1:{http_port(service)}/"
    ann = tom = None
    try:
        tom = await text_user(service, "tom")
        ann = await WebUser(browser, url).open()
        await ann.enter("ann")
        await ann.join("plaza")
        tom.say("/join plaza")
        await tom.text("* you are in")
        service.listeners.ports[[role for role, _ in service.listeners.ports].index("http")][1].stopReading()
        for session in [s for s in service.connections.sessions if s.user == "ann"]:
            session.transport.abort()  # the network goes; no new connection gets in for now
        await ann.wait_text("#connection", "Connection lost. Reconnecting in")
        assert (await ann.boxes("#connection"))["#connection"]["shown"]
        assert await ann.evaluate("() => document.getElementById('send-button').disabled") is True
        tom.say("while ann was away")
        tom.say("/help")
        await tom.text("* commands:")  # the answer to a later line: the message before it is stored
        service.listeners.accept()  # the network is back
        await ann.wait_text("#connection", "Connected again.")
        await ann.wait_message("tom", "while ann was away")
        assert await ann.evaluate("() => document.getElementById('send-button').disabled") is False
        await ann.wait_for("#connection", state="hidden")  # the notice goes by itself
        assert ann.problems == []
    finally:
        if ann is not None:
            await ann.close()
        if tom is not None:
            await tom.close()
        await service.stopService()
