"""Real IRC clients against chatd: Debian's irssi, driven in tmux as a person would (keys in, screen out),
and the `irc` library from PyPI (jaraco's) as a second, independent client; each talking with a text user.

`make test` installs irssi and tmux (Makefile: system-deps); without them the irssi test is skipped with
the reason, and fails when CI=true.
"""

import os
import queue
import shutil
import subprocess
import threading
import time

import pytest_twisted
from twisted.internet.threads import deferToThread

from tests.conftest import TIMEOUT, _sleep, need, text_user
from tests.ircclient import register

IRSSI, TMUX = shutil.which("irssi"), shutil.which("tmux")


async def until(condition, what: str, timeout: float = TIMEOUT):
    """Wait until `condition()` is true (checked every 20 ms), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await _sleep(0.02)
    return result


# -- irssi in tmux


def need_irssi() -> None:
    missing = [name for name, path in (("irssi", IRSSI), ("tmux", TMUX)) if path is None]
    if missing:
        need(f"IRSSI TEST: {' and '.join(missing)} not installed (make system-deps installs them with apt-get)")


class Tmux:
    """irssi in a detached tmux session on a tmux server of its own (its own socket)."""

    def __init__(self, home, port: int):
        self.socket = f"chatd-irc-test-{os.getpid()}"
        self.home = home
        home.mkdir()
        # SASL PLAIN, #lobby joined at start; cmdmax/cmdspeed: no flood delay (2.2 s a line past 5) in a test
        (home / "config").write_text(
            f"""
servers = ( {{ address = "127.0.0.1"; port = "{port}"; chatnet = "chatd"; autoconnect = "yes"; }} );
chatnets = {{
  chatd = {{ type = "IRC"; nick = "alice"; username = "alice"; realname = "Alice";
             sasl_mechanism = "PLAIN"; sasl_username = "alice"; sasl_password = "secret";
             cmdmax = "100"; cmdspeed = "0"; }};
}};
channels = ( {{ name = "#lobby"; chatnet = "chatd"; autojoin = "yes"; }} );
settings = {{ core = {{ settings_autosave = "no"; }}; "fe-common/core" = {{ timestamps = "no"; }}; }};
"""
        )

    def tmux(self, *args: str) -> str:
        return subprocess.run([TMUX, "-L", self.socket, *args], check=True, capture_output=True, text=True).stdout

    def start(self) -> None:
        self.tmux("new-session", "-d", "-s", "irssi", "-x", "200", "-y", "50", f"{IRSSI} --home={self.home}")

    def keys(self, text: str) -> None:
        self.tmux("send-keys", "-t", "irssi", "-l", text)
        self.tmux("send-keys", "-t", "irssi", "Enter")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "irssi")

    async def shows(self, text: str) -> str:
        try:
            return await until(lambda: text in (screen := self.screen()) and screen, f"irssi to show {text!r}")
        except AssertionError as e:
            raise AssertionError(f"{e}; the screen:\n{self.screen()}") from None

    def stop(self) -> None:
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True)


@pytest_twisted.ensureDeferred
async def test_irssi_in_tmux_chats_with_a_text_user(chatd_irc, tmp_path):
    need_irssi()
    await register(chatd_irc, "alice")
    bob = await text_user(chatd_irc, "bob")
    bob.say("/join lobby")
    await bob.text("* you are in #lobby")
    bob.say("/msg alice while you were away")  # waits for alice's login
    await bob.text("[to alice]")
    irssi = Tmux(tmp_path / "irssi", chatd_irc.listeners.address("irc").port)
    irssi.start()
    try:
        # irssi logs in with SASL PLAIN and joins #lobby by itself
        assert await bob.text("* alice") == "* alice joined #lobby"
        await irssi.shows("while you were away: 1 messages")
        irssi.keys("/window goto #lobby")
        await irssi.shows("Total of 2 nicks")
        bob.say("hello irssi")
        await irssi.shows("bob> hello irssi")
        irssi.keys("hi from irssi")
        assert await bob.text("[#lobby]") == "[#lobby] <alice> hi from irssi"
        irssi.keys("/me waves")
        assert await bob.text("[#lobby]") == "[#lobby] <alice> /me waves"
        irssi.keys("/topic tea at five")
        assert await bob.text("* alice set") == "* alice set the topic of #lobby: tea at five"
        irssi.keys("/msg bob psst")
        assert await bob.text("[private]") == "[private] <alice> psst"
        irssi.keys("/window goto bob")  # the query, with what bob sent while alice was away
        screen = await irssi.shows("while you were away")
        assert "psst" in screen
        bob.say("/msg alice and now?")
        await irssi.shows("and now?")
        irssi.keys("/part #lobby")
        assert await bob.text("* alice left") == "* alice left #lobby"
        irssi.keys("/quit")
        await until(lambda: not chatd_irc.bus.online("alice"), "alice to go offline")
    finally:
        irssi.stop()
    await bob.close()


# -- jaraco's irc library


class LibraryClient:
    """An `irc` (PyPI) client on a thread of its own; what it hears goes to a queue the test reads."""

    def __init__(self, port: int):
        import irc.client

        self.events: queue.Queue = queue.Queue()
        self.reactor = irc.client.Reactor()
        self.reactor.add_global_handler("all_events", lambda conn, event: self.events.put(event), -10)
        self.connection = self.reactor.server().connect(
            "127.0.0.1", port, "carol", password="secret", sasl_login="carol"
        )
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self._running:
            self.reactor.process_once(0.05)

    def _wait(self, kind: str, test) -> object:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            if event.type == kind and test(event):
                return event
        raise AssertionError(f"the irc library heard no {kind}")

    def heard(self, kind: str, test=lambda event: True):
        """A Deferred firing with the next event of `kind` that passes `test` (waiting in a thread)."""
        return deferToThread(self._wait, kind, test)

    def stop(self) -> None:
        self._running = False
        self._thread.join()
        self.reactor.disconnect_all()


@pytest_twisted.ensureDeferred
async def test_the_irc_library_from_pypi_logs_in_with_sasl_and_chats(chatd_irc):
    await register(chatd_irc, "carol")
    bob = await text_user(chatd_irc, "bob")
    bob.say("/join cafe")
    await bob.text("* you are in #cafe")
    client = LibraryClient(chatd_irc.listeners.address("irc").port)
    try:
        welcome = await client.heard("welcome")
        assert welcome.target == "carol"
        client.connection.join("#cafe")
        names = await client.heard("namreply")
        assert set(names.arguments[2].split()) == {"bob", "carol"}
        assert await bob.text("* carol") == "* carol joined #cafe"
        bob.say("hi carol")
        said = await client.heard("pubmsg")
        assert (said.source.nick, said.target, said.arguments) == ("bob", "#cafe", ["hi carol"])
        client.connection.privmsg("#cafe", "hello from a library")
        assert await bob.text("[#cafe]") == "[#cafe] <carol> hello from a library"
        client.connection.privmsg("bob", "a private word")
        assert await bob.text("[private]") == "[private] <carol> a private word"
        bob.say("/msg carol got it")
        private = await client.heard("privmsg")
        assert (private.source.nick, private.arguments) == ("bob", ["got it"])
        client.connection.whois("bob")
        assert (await client.heard("whoisuser")).arguments[0] == "bob"
        client.connection.privmsg("nobody", "hello?")
        assert (await client.heard("nosuchnick")).arguments[0] == "nobody"
        client.connection.part("#cafe")
        assert await bob.text("* carol left") == "* carol left #cafe"
    finally:
        client.stop()
    await until(lambda: not chatd_irc.bus.online("carol"), "carol to go offline")
    await bob.close()
