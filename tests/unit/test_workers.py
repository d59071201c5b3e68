"""The workers' supervisor passes signals on (without processes: stand-ins for the workers)."""

import signal

from twisted.internet.task import Clock

from chatdaemon.config import Config
from chatdaemon.workers import READY_FD, Supervisor, _Worker


class FakeProcess:
    def __init__(self):
        self.signals: list[int] = []

    def signalProcess(self, signum):
        self.signals.append(signum)


def test_a_sighup_reaches_a_worker_still_starting_once_it_is_ready_and_sigterm_at_once():
    supervisor = Supervisor(Config(), Clock())
    ready, starting = _Worker(supervisor, 1), _Worker(supervisor, 2)
    ready.ready = True
    supervisor.workers = {1: ready, 2: starting}
    supervisor.processes = {1: FakeProcess(), 2: FakeProcess()}

    supervisor.signal_all(signal.SIGHUP)
    assert supervisor.processes[1].signals == [signal.SIGHUP]
    assert supervisor.processes[2].signals == []  # its handler may not be in place: the default would end it

    starting.childDataReceived(READY_FD, b"ready\n")
    assert starting.ready and supervisor.processes[2].signals == [signal.SIGHUP]
    starting.childDataReceived(READY_FD, b"ready\n")
    assert supervisor.processes[2].signals == [signal.SIGHUP]  # once

    supervisor.signal_all(signal.SIGTERM)
    assert supervisor.processes[1].signals[-1] == supervisor.processes[2].signals[-1] == signal.SIGTERM
