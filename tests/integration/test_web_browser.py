"""The web page in headless Chromium: two browser tabs chat with each other and with a person on the
line transport (text dialect over TCP), with history, typing, room presence, and user text shown as text.

The daemon's allow-list is emptied here, so the page's WebSocket gets in only by the same-origin rule.
Needs /usr/bin/chromium and the playwright package (tests/browser.py); skipped, with the reason, without.
"""

from dataclasses import replace

import pytest_twisted

from tests.browser import WebUser, browser  # noqa: F401  (the fixture)
from tests.conftest import make_config, start_service, text_user
from tests.wsclient import http_port


async def page_service(data_dir):
    config = make_config(data_dir)
    return await start_service(replace(config, http_options=replace(config.http_options, allowed_origins=())))


@pytest_twisted.ensureDeferred
async def test_two_pages_and_a_line_user_chat(data_dir, browser):  # noqa: F811
    service = await page_service(data_dir)
    url = f"http://127.0.0.1:{http_port(service)}/"
    pages, lines = [], []
    try:
        ann = await WebUser(browser, url).open()
        pages.append(ann)
        ben = await WebUser(browser, url).open()
        pages.append(ben)
        await ann.wait_for("#chat-view", state="hidden")  # only the form until one logs in
        await ann.enter("ann")
        await ann.wait_for("#login-view", state="hidden")
        await ben.enter("ben")
        tom = await text_user(service, "tom")
        lines.append(tom)
        tom.say("/join plaza")
        await tom.text("* you are in #plaza")
        tom.say("before the pages came")

        await ann.join("plaza")
        assert await ann.messages() == [("tom", "before the pages came")]  # the history, by REST
        await tom.text("* ann joined #plaza")
        await ben.join("plaza")
        await ann.wait_text("#members", "ben")

        # typing shows in the other tab, and stops with the message
        await ann.type("hello from ann")
        await ben.wait_text("#typing", "ann is typing")
        await ann.press_enter()
        await ben.wait_message("ann", "hello from ann")
        await ben.wait_for("#typing:empty")
        assert await tom.text("[#plaza]") == "[#plaza] <ann> hello from ann"

        await ben.say("hi ann, ben here")
        await ann.wait_message("ben", "hi ann, ben here")
        assert await tom.text("[#plaza]") == "[#plaza] <ben> hi ann, ben here"

        tom.say("and tom on the line")
        trap = '<img src=x onerror="document.body.dataset.owned=1"> <b>bold</b>'
        tom.say(trap)
        for page in (ann, ben):
            await page.wait_message("tom", "and tom on the line")
            await page.wait_message("tom", trap)  # shown as the text it is
            assert await page.evaluate("() => document.querySelectorAll('#messages img, #messages b').length") == 0
            assert await page.evaluate("() => document.body.dataset.owned") is None
        assert [m[1] for m in await ben.messages()] == [
            "before the pages came",
            "hello from ann",
            "hi ann, ben here",
            "and tom on the line",
            trap,
        ]

        # a third tab, logging in (not registering) as ann, finds the room in its list and its history
        ann2 = await WebUser(browser, url).open()
        pages.append(ann2)
        await ann2.enter("ann", register=False)
        await ann2.wait_text("#rooms", "#plaza")
        await ann2.join("plaza")
        assert [m[1] for m in await ann2.messages()] == [m[1] for m in await ben.messages()]

        # room presence: the page shows who of the room is connected now, friends or not; when tom's
        # last connection goes, ann's tabs show him offline, and online when he is back
        await ann.wait_for('#members li[data-user="ben"][data-presence="online"]')
        await ann.wait_for('#members li[data-user="tom"][data-presence="online"]')
        await tom.close()
        lines.remove(tom)
        await ann.wait_for('#members li[data-user="tom"][data-presence="offline"]')
        await ann.wait_text("#messages", "tom went offline")
        tom = await text_user_login(service, "tom")
        lines.append(tom)
        await ann.wait_for('#members li[data-user="tom"][data-presence="online"]')
        await ben.wait_text("#people-title", "People here (3, 3 online)")

        # logging out returns to the form; nothing went wrong in any tab
        await ben.browser.run(lambda: ben.page.get_by_role("button", name="Log out").click())
        await ben.wait_for("#login-view", state="visible")
        await ben.wait_for("#chat-view", state="hidden")
        for page in pages:
            assert page.problems == []
    finally:
        for page in pages:
            await page.close()
        for line in lines:
            await line.close()
        await service.stopService()


async def text_user_login(service, name, password="secret"):
    from tests.conftest import connect

    client = await connect(service)
    client.say(f"/login {name} {password}")
    await client.text(f"* welcome, {name}")
    return client
