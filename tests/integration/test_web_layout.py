"""The web page at desktop and phone sizes in headless Chromium: what a person needs is on screen (checked
on the element boxes of the very screen that is saved as a PNG, not on its pixels), the input stays
reachable, and the page passes axe-core's accessibility rules (labels, names, contrast, in light and dark)
and works from the keyboard in a sensible focus order.

Needs /usr/bin/chromium and the playwright package (tests/browser.py), and for axe-core `make npm-deps`
(tests/js, pinned); each is skipped, with the reason, without.
"""

import pathlib

import pytest
import pytest_twisted

from tests.browser import DESKTOP, PHONE, WebUser, browser  # noqa: F401  (the fixture)
from tests.conftest import need, text_user
from tests.integration.test_web_browser import page_service
from tests.wsclient import http_port

AXE = pathlib.Path(__file__).parents[1] / "js" / "node_modules" / "axe-core" / "axe.min.js"
AXE_RUN_JS = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
    .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', '))"""
FOCUSED_JS = """() => { const a = document.activeElement;
    return a.id || a.dataset.cid || a.getAttribute('aria-label') || a.textContent.trim().slice(0, 30); }"""


def on_screen(box: dict, viewport: dict) -> bool:
    return (
        box is not None
        and box["shown"]
        and box["x"] >= 0
        and box["y"] >= 0
        and box["right"] <= viewport["width"] + 0.5
        and box["bottom"] <= viewport["height"] + 0.5
    )


async def crowded_room(service) -> list:
    """tom and sue in #plaza, with 40 lines of history: more than a screen."""
    tom = await text_user(service, "tom")
    sue = await text_user(service, "sue")
    for who in (tom, sue):
        who.say("/join plaza")
        await who.text("* you are in")
    for i in range(40):
        tom.say(f"line {i}: a sentence long enough to wrap on a phone, and then some more words")
    tom.say("/help")
    await tom.text("* commands:")  # a later line answered: the 40 before it are stored
    return [tom, sue]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest_twisted.ensureDeferred
async def test_what_a_person_needs_is_on_screen_and_the_input_stays_reachable(data_dir, tmp_path, browser, viewport):  # noqa: F811
    service = await page_service(data_dir)
    url = f"http://127.0.0.1:{http_port(service)}/"
    lines, ann = [], None
    phone = viewport is PHONE
    try:
        lines = await crowded_room(service)
        ann = await WebUser(browser, url, viewport).open()
        size = await ann.screenshot(tmp_path / "login.png")
        assert size == (viewport["width"], viewport["height"])
        boxes = await ann.boxes("#username", "#password", "#login-button", "#register-button")
        assert all(on_screen(box, viewport) for box in boxes.values()), boxes
        await ann.enter("ann")
        await ann.join("plaza")
        await ann.wait_text("#people-title", "People here (3, 3 online)")
        await ann.say("and ann, from a " + ("phone" if phone else "desktop"))
        await ann.wait_for('#messages li.mine .state[data-state="delivered"]')
        assert await ann.screenshot(tmp_path / "room.png") == size
        wanted = ["#room-title", "#people summary", "#messages", "#messages li.message:last-of-type",
                  "#message-input", "#send-button", "#attach-button", "#logout"]  # fmt: skip
        boxes = await ann.boxes(*wanted, "#sidebar", "#members", "#rooms-toggle")
        for selector in wanted:
            assert on_screen(boxes[selector], viewport), (selector, boxes[selector])
        newest, messages = boxes["#messages li.message:last-of-type"], boxes["#messages"]
        assert newest["bottom"] <= messages["bottom"] + 1  # the newest message is in view, not below
        assert boxes["#message-input"]["y"] >= messages["bottom"]  # the input is below the list, not under it
        if phone:  # one pane at a time; the people fold away; the Rooms button switches
            assert not boxes["#sidebar"]["shown"] and not boxes["#members"]["shown"]
            assert on_screen(boxes["#rooms-toggle"], viewport)
        else:
            assert on_screen(boxes["#sidebar"], viewport) and on_screen(boxes["#members"], viewport)
            assert not boxes["#rooms-toggle"]["shown"]

        # a long message being written: the input grows a little, scrolls inside, and stays on screen
        def write_lines():
            box = ann.page.get_by_label("Message", exact=True)
            box.fill("\n".join(f"draft line {i}" for i in range(30)))
            box.press("End")

        before = (await ann.boxes("#message-input"))["#message-input"]
        await ann.browser.run(write_lines)
        boxes = await ann.boxes("#message-input", "#send-button", "#messages")
        assert all(on_screen(box, viewport) for box in boxes.values()), boxes
        grown = boxes["#message-input"]["bottom"] - boxes["#message-input"]["y"]
        assert before["bottom"] - before["y"] < grown <= 8 * 16 + 1  # rem: the CSS max-height
        await ann.screenshot(tmp_path / "writing.png")

        if phone:
            await ann.click("button", "Rooms")
            boxes = await ann.boxes("#sidebar", "#room-name", "#public-rooms", "#conversation")
            assert on_screen(boxes["#sidebar"], viewport) and on_screen(boxes["#room-name"], viewport)
            assert not boxes["#conversation"]["shown"]
            assert await ann.evaluate("() => document.getElementById('rooms-toggle').ariaExpanded") == "true"
            await ann.screenshot(tmp_path / "rooms.png")
            await ann.browser.run(lambda: ann.page.locator('#rooms button[data-cid="plaza"]').click())
            await ann.wait_for("#message-input", state="visible")
            await ann.browser.run(lambda: ann.page.locator("#people summary").click())
            boxes = await ann.boxes("#members", 'li.member[data-user="tom"]')
            assert all(on_screen(box, viewport) for box in boxes.values()), boxes
            await ann.screenshot(tmp_path / "people.png")
        assert ann.problems == []
    finally:
        if ann is not None:
            await ann.close()
        for line in lines:
            await line.close()
        await service.stopService()


def why_no_axe() -> str:
    if not AXE.is_file():
        return f"ACCESSIBILITY TEST NOT RUN: {AXE} is missing; `make npm-deps` installs axe-core (tests/js, pinned)"
    return ""


async def axe_violations(page: WebUser) -> list[str]:
    await page.evaluate(AXE.read_text())  # through the DevTools protocol: the page's own CSP still holds for it
    return await page.evaluate(AXE_RUN_JS)


async def tab_order(page: WebUser, presses: int) -> list[str]:
    order = []
    for _ in range(presses):
        await page.browser.run(lambda: page.page.keyboard.press("Tab"))
        order.append(await page.evaluate(FOCUSED_JS))
    return order


def in_order(seen: list[str], wanted: list[str]) -> bool:
    """`wanted` occur in `seen`, in this order (others may come between)."""
    positions = [seen.index(w) if w in seen else -1 for w in wanted]
    return -1 not in positions and positions == sorted(positions)


@pytest.mark.parametrize(
    "viewport, scheme", [(DESKTOP, "light"), (PHONE, "light"), (DESKTOP, "dark")], ids=["desktop", "phone", "dark"]
)
@pytest_twisted.ensureDeferred
async def test_the_page_passes_axe_and_works_from_the_keyboard(data_dir, browser, viewport, scheme):  # noqa: F811
    need(why_no_axe())
    service = await page_service(data_dir)
    url = f"http://127.0.0.1:{http_port(service)}/"
    lines, ann = [], None
    try:
        lines = await crowded_room(service)
        ann = await WebUser(browser, url, viewport, scheme).open()
        assert await axe_violations(ann) == []
        # the form from the keyboard: name, password, Log in, Register; Enter in the password field logs in
        assert await tab_order(ann, 4) == ["username", "password", "login-button", "register-button"]
        await ann.browser.run(lambda: ann.page.get_by_role("button", name="Register").click())
        await ann.wait_text("#login-error", "Enter a name and a password.")
        assert await axe_violations(ann) == []  # with the error shown
        await ann.enter("ann")
        await ann.join("plaza")  # by keyboard: the name, then Enter
        await ann.say("a line of ann's")
        await ann.wait_for('#messages li.mine .state[data-state="delivered"]')
        assert await axe_violations(ann) == []
        await ann.browser.run(lambda: ann.page.locator("#logout").focus())
        order = await tab_order(ann, 12)
        if viewport is PHONE:  # the conversation pane: its controls in reading order
            assert in_order(order, ["people-title", "messages", "attach-button", "message-input", "send-button"]), order
            await ann.click("button", "Rooms")
            assert await axe_violations(ann) == []
        else:
            wanted = ["plaza", "room-name", "Join", "people-title", "messages", "attach-button", "message-input"]
            assert in_order(order, wanted), order
        assert ann.problems == []
    finally:
        if ann is not None:
            await ann.close()
        for line in lines:
            await line.close()
        await service.stopService()
