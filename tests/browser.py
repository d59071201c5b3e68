"""Headless Chromium for the web page's tests: Debian's /usr/bin/chromium driven by Playwright.

Playwright's sync API must stay in one thread and must not run in the reactor's: every browser
call goes to one dedicated thread (`Browser.run`) and comes back to the reactor as a Deferred, so
the test's coroutine (and the daemon in the same reactor) keeps running while a page waits.
`playwright install` is never used (it downloads browsers): `make test` installs Debian's
chromium. Without it, or without the playwright package, the tests that need a browser are
skipped, each with the reason in pytest's summary.
"""

import concurrent.futures
import os

import pytest
from twisted.internet import defer, reactor

from tests.conftest import need

CHROMIUM = os.environ.get("CHATD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
WAIT_MS = 10_000  # every Playwright wait and action

MESSAGES_JS = """() => [...document.querySelectorAll('#messages li.message')]
    .map(li => [li.dataset.sender, li.querySelector('.text').textContent])"""
HAS_MESSAGE_JS = """([sender, text]) => [...document.querySelectorAll('#messages li.message')]
    .some(li => li.dataset.sender === sender && li.querySelector('.text').textContent === text)"""


def why_no_browser() -> str | None:
    """The reason the browser tests cannot run here, or None if they can."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (
            f"BROWSER TEST NOT RUN: {CHROMIUM} is missing. `make test` installs Debian's chromium "
            "(apt-get, as root); without apt, run `apt-get install chromium` yourself or set CHATD_CHROMIUM."
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        return f"BROWSER TEST NOT RUN: the playwright package is missing ({e}); `make venv` installs the test extra."
    return None


class Browser:
    """One headless Chromium, owned by one thread."""

    def __init__(self):
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self._playwright = self._browser = None

    def start(self) -> None:
        self._thread.submit(self._launch).result(timeout=60)

    def _launch(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            timeout=30_000,
            handle_sigint=False,
        )

    def run(self, fn, *args) -> defer.Deferred:
        """Call fn(*args) in the browser's thread; the Deferred fires in the reactor's."""
        result = defer.Deferred()
        future = self._thread.submit(fn, *args)

        def done(f):
            error = f.exception()
            if error is None:
                result.callback(f.result())
            else:
                result.errback(error)

        future.add_done_callback(lambda f: reactor.callFromThread(done, f))
        return result

    def new_context(self, viewport: dict | None = None, color_scheme: str = "light"):
        """A fresh profile (its own sessionStorage); call in the browser's thread."""
        context = self._browser.new_context(color_scheme=color_scheme, **({"viewport": viewport} if viewport else {}))
        context.set_default_timeout(WAIT_MS)
        return context

    def close(self) -> None:
        def stop():
            try:
                if self._browser is not None:
                    self._browser.close()
            finally:
                if self._playwright is not None:
                    self._playwright.stop()

        try:
            self._thread.submit(stop).result(timeout=30)
        finally:
            self._thread.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def browser():
    need(why_no_browser())
    chromium = Browser()
    chromium.start()
    yield chromium
    chromium.close()


# Where each element is and whether a person can see it: its box, and whether it is rendered and not hidden.
BOXES_JS = """(selectors) => selectors.map((s) => {
    const node = document.querySelector(s);
    if (!node) return [s, null];
    const r = node.getBoundingClientRect();
    const shown = r.width > 0 && r.height > 0 && node.checkVisibility({visibilityProperty: true});
    return [s, {x: r.x, y: r.y, right: r.right, bottom: r.bottom, shown}];
})"""
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


class WebUser:
    """One browser tab with the page open, as one person."""

    def __init__(self, browser: Browser, base_url: str, viewport: dict | None = None, color_scheme: str = "light"):
        self.browser, self.base_url, self.viewport, self.color_scheme = browser, base_url, viewport, color_scheme
        self.context = self.page = None
        self.problems: list[str] = []  # console errors, uncaught exceptions, CSP violations

    async def open(self) -> "WebUser":
        def open_page():
            self.context = self.browser.new_context(self.viewport, self.color_scheme)
            self.page = self.context.new_page()
            self.page.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
            self.page.on("pageerror", lambda e: self.problems.append(str(e)))
            self.page.goto(self.base_url)
            self.page.wait_for_selector("body[data-ready=true]")

        await self.browser.run(open_page)
        return self

    async def enter(self, name: str, password: str = "secret", register: bool = True) -> "WebUser":
        def enter():
            self.page.get_by_label("Name", exact=True).fill(name)
            self.page.get_by_label("Password", exact=True).fill(password)
            self.page.get_by_role("button", name="Register" if register else "Log in").click()
            self.page.wait_for_function(
                "n => document.getElementById('status').textContent === 'connected as ' + n", arg=name
            )

        await self.browser.run(enter)
        return self

    async def join(self, room: str) -> None:
        """Join by keyboard: type the name, press Enter; wait for the history to be shown."""

        def join():
            box = self.page.get_by_label("Join a room", exact=True)
            box.fill(room)
            box.press("Enter")
            self.page.wait_for_selector(f'#messages[data-loaded="{room}"]')

        await self.browser.run(join)

    async def type(self, text: str) -> None:
        await self.browser.run(lambda: self.page.get_by_label("Message", exact=True).press_sequentially(text))

    async def press_enter(self) -> None:
        await self.browser.run(lambda: self.page.get_by_label("Message", exact=True).press("Enter"))

    async def say(self, text: str) -> None:
        def say():
            box = self.page.get_by_label("Message", exact=True)
            box.fill(text)
            box.press("Enter")

        await self.browser.run(say)

    async def wait_message(self, sender: str, text: str) -> None:
        await self.browser.run(lambda: self.page.wait_for_function(HAS_MESSAGE_JS, arg=[sender, text]))

    async def messages(self) -> list[tuple[str, str]]:
        return [tuple(m) for m in await self.browser.run(lambda: self.page.evaluate(MESSAGES_JS))]

    async def wait_text(self, selector: str, text: str) -> None:
        """Until the element's text contains `text`."""
        js = "([s, t]) => (document.querySelector(s)?.textContent || '').includes(t)"
        await self.browser.run(lambda: self.page.wait_for_function(js, arg=[selector, text]))

    async def wait_for(self, selector: str, state: str = "attached") -> None:
        await self.browser.run(lambda: self.page.wait_for_selector(selector, state=state))

    async def evaluate(self, js: str, arg=None):
        return await self.browser.run(lambda: self.page.evaluate(js, arg))

    async def click(self, role: str, name: str) -> None:
        await self.browser.run(lambda: self.page.get_by_role(role, name=name, exact=True).click())

    async def boxes(self, *selectors: str) -> dict:
        """{selector: {x, y, right, bottom, shown} or None}, in CSS pixels of the viewport."""
        return dict(await self.evaluate(BOXES_JS, list(selectors)))

    async def screenshot(self, path) -> tuple[int, int]:
        """Save what the tab shows as a PNG; its size in pixels."""
        data = await self.browser.run(lambda: self.page.screenshot(path=str(path)))
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")

    async def close(self) -> None:
        if self.context is not None:
            context, self.context = self.context, None
            await self.browser.run(context.close)
