"""The throttles on the ways in (core/throttle.py), on a fake clock: failed logins per account and per address,
new accounts, the fair queue of the password hasher, and the bounds on their memory."""

import dataclasses
import sys

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from chatdaemon import errors
from chatdaemon.config import Throttle
from chatdaemon.core.throttle import FairQueue, LoginThrottle, RegistrationThrottle, source_of
from chatdaemon.errors import ChatError

SETTINGS = Throttle(login_failures_per_account=3, login_failures_per_address=5, login_delay=2.0,
                    login_account_max_delay=16.0, login_address_max_delay=100.0, login_window=600.0)  # fmt: skip


def fail_once(throttle: LoginThrottle, account, source, by_key=False) -> None:
    with throttle.attempt(account, source, by_key) as attempt:
        attempt.failed()


def refusal(throttle: LoginThrottle, account, source, by_key=False) -> ChatError:
    with pytest.raises(ChatError) as refused, throttle.attempt(account, source, by_key):
        pass
    return refused.value


@pytest.mark.parametrize(
    ("peer", "source"),
    [
        ("127.0.0.1:5555", "127.0.0.1"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::/64"),
        ("2001:db8:1:2:aaaa::1:443", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::7", "2001:db8:1:2::/64"),
        ("[2001:db8::1]:80", "2001:db8::/64"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("", ""),
        ("/run/chatd.sock", "/run/chatd.sock"),
    ],
)
def test_a_source_is_the_host_and_an_ipv6_host_stands_for_its_64(peer, source):
    assert source_of(peer) == source


def test_an_account_past_its_free_failures_waits_a_growing_delay_after_each_failure():
    clock = Clock()
    throttle = LoginThrottle(clock, SETTINGS)
    for _ in range(3):
        fail_once(throttle, "alice", "10.0.0.1")
    refused = refusal(throttle, "alice", "10.0.0.2")  # from anywhere
    assert refused.code == errors.TOO_MANY_ATTEMPTS and refused.details["retry_after"] == 2
    clock.advance(2)
    fail_once(throttle, "alice", "10.0.0.3")  # the 4th: the wait doubles
    assert refusal(throttle, "alice", "10.0.0.3").details["retry_after"] == 4
    clock.advance(4)
    for expected in (8, 16, 16):  # capped at login_account_max_delay
        fail_once(throttle, "alice", "10.0.0.4")
        assert refusal(throttle, "alice", "10.0.0.4").details["retry_after"] == expected
        clock.advance(expected)
    with throttle.attempt("alice", "10.0.0.5") as attempt:
        attempt.succeeded()  # the right password clears the account
    with throttle.attempt("alice", "10.0.0.5") as attempt:
        attempt.succeeded()
    with throttle.attempt("bob", "10.0.0.1") as attempt:  # another account, an address with 1-3 failures: free
        attempt.succeeded()


def test_past_the_free_failures_only_one_attempt_at_a_time_is_let_through():
    clock = Clock()
    throttle = LoginThrottle(clock, SETTINGS)
    for _ in range(3):
        fail_once(throttle, "alice", "")
    clock.advance(2)
    with throttle.attempt("alice", ""):  # let through; undecided while the hash runs
        assert refusal(throttle, "alice", "").code == errors.TOO_MANY_ATTEMPTS
    with throttle.attempt("alice", ""):  # it ended undecided (e.g. a server error): counts for nothing
        pass


def test_concurrent_attempts_count_as_pending_failures():
    throttle = LoginThrottle(Clock(), SETTINGS)
    with throttle.attempt("alice", ""), throttle.attempt("alice", ""), throttle.attempt("alice", ""):
        assert refusal(throttle, "alice", "").code == errors.TOO_MANY_ATTEMPTS


def test_an_address_is_throttled_whatever_the_accounts_and_a_success_does_not_clear_it():
    clock = Clock()
    throttle = LoginThrottle(clock, SETTINGS)
    for _ in range(5):
        fail_once(throttle, None, "10.0.0.9")  # names that are no account count for the address only
    with throttle.attempt("mine", "10.0.0.8") as attempt:
        attempt.succeeded()
    assert refusal(throttle, "mine", "10.0.0.9").details["retry_after"] == 2
    assert refusal(throttle, None, "10.0.0.9").code == errors.TOO_MANY_ATTEMPTS
    # session keys are counted apart: a password flood does not shut out a key holder at that address
    with throttle.attempt(None, "10.0.0.9", by_key=True) as attempt:
        attempt.succeeded()


def test_unknown_session_keys_are_throttled_per_address():
    clock = Clock()
    throttle = LoginThrottle(clock, SETTINGS)
    for _ in range(5):
        fail_once(throttle, None, "10.0.0.7", by_key=True)
    assert refusal(throttle, None, "10.0.0.7", by_key=True).code == errors.TOO_MANY_ATTEMPTS
    with throttle.attempt(None, "10.0.0.7") as attempt:  # password logins are another table
        attempt.failed()


def test_failures_are_forgotten_after_the_window():
    clock = Clock()
    throttle = LoginThrottle(clock, SETTINGS)
    for _ in range(3):
        fail_once(throttle, "alice", "")
    clock.advance(2)
    fail_once(throttle, "alice", "")  # four: the next wait would be 4 s, then 8 s
    clock.advance(600)
    for _ in range(3):  # three free failures again, none of them refused
        fail_once(throttle, "alice", "")
    assert refusal(throttle, "alice", "").details["retry_after"] == 2


def test_the_tables_never_hold_more_than_max_tracked_entries():
    settings = dataclasses.replace(SETTINGS, max_tracked=1000)
    logins = LoginThrottle(Clock(), settings)
    registrations = RegistrationThrottle(Clock(), dataclasses.replace(settings, registration_burst=10**9,
                                                                      registrations_per_second=1e9))  # fmt: skip
    for i in range(20_000):
        fail_once(logins, f"user{i}", f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
        fail_once(logins, None, f"11.{i >> 16}.{(i >> 8) & 255}.{i & 255}", by_key=True)
        registrations.check(f"12.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
    for table in (logins.accounts, logins.sources, logins.key_sources, registrations.sources):
        assert len(table) == 1000


def test_an_entry_costs_under_250_bytes():
    """The bound etc/chatd.toml and docs/security.md state for max_tracked."""
    logins = LoginThrottle(Clock(), SETTINGS)
    fail_once(logins, None, "192.168.100.200")
    key, record = next(iter(logins.sources._entries.items()))
    links = 4 * 8  # an OrderedDict entry: its hash table slot (key, value, hash) and the order links
    assert sys.getsizeof(key) + sys.getsizeof(record) + links < 250


def test_registrations_per_address_and_in_all():
    clock = Clock()
    settings = dataclasses.replace(SETTINGS, registrations_per_address=2, registration_window=100.0,
                                   registrations_per_second=0.5, registration_burst=3)  # fmt: skip
    throttle = RegistrationThrottle(clock, settings)
    throttle.check("10.0.0.1")
    throttle.check("10.0.0.1")
    with pytest.raises(ChatError) as refused:
        throttle.check("10.0.0.1")
    assert refused.value.code == errors.TOO_MANY_REGISTRATIONS and refused.value.details["retry_after"] == 50
    throttle.check("10.0.0.2")  # the global burst still had one (the refusal above did not spend it)
    with pytest.raises(ChatError) as refused:
        throttle.check("10.0.0.3")  # the global burst is spent
    assert refused.value.details["retry_after"] == 2
    clock.advance(2)
    throttle.check("10.0.0.3")
    clock.advance(50)
    throttle.check("10.0.0.1")  # one more per 50 s from an address


def test_the_fair_queue_keeps_slots_for_others_and_serves_waiting_sources_in_turn():
    queue = FairQueue(slots=4, per_source=8, queue=100)  # a source runs at most 2 at once
    started: list[str] = []
    gates: dict[str, Deferred] = {}

    def job(name: str) -> Deferred:
        started.append(name)
        gates[name] = Deferred()
        return gates[name]

    done = [queue.run("flood", job, f"f{i}") for i in range(6)]
    assert started == ["f0", "f1"]  # half the slots; the rest of the flood waits
    mine = queue.run("alice", job, "a0")
    queue.run("bob", job, "b0")
    assert started == ["f0", "f1", "a0", "b0"]  # others find a slot at once
    queue.run("carol", job, "c0")
    gates["f0"].callback(None)  # the flood was in line before carol: its turn
    gates["a0"].callback("alice's")
    assert started == ["f0", "f1", "a0", "b0", "f2", "c0"]
    assert done[0].called and mine.result == "alice's"
    while not all(gate.called for gate in gates.values()):
        next(gate for gate in gates.values() if not gate.called).callback(None)
    assert started == ["f0", "f1", "a0", "b0", "f2", "c0", "f3", "f4", "f5"]
    assert all(d.called for d in done) and queue.waiting == queue.running == 0


def test_one_source_alone_may_use_only_its_share():
    queue = FairQueue(slots=4, per_source=8, queue=100, share=4)
    gates = [Deferred() for _ in range(5)]
    for gate in gates:
        queue.run("flood", lambda gate=gate: gate)
    assert queue.running == 4 and queue.waiting == 1
    for gate in gates:
        gate.callback(None)
    assert queue.running == queue.waiting == 0


def test_the_fair_queue_refuses_past_a_sources_share_and_past_its_length():
    queue = FairQueue(slots=1, per_source=2, queue=3)
    pending = Deferred()
    queue.run("a", lambda: pending)
    queue.run("a", lambda: None)
    with pytest.raises(ChatError) as refused:
        queue.run("a", lambda: None)
    assert refused.value.code == errors.TOO_MANY_ATTEMPTS
    queue.run("b", lambda: None)
    queue.run("c", lambda: None)
    with pytest.raises(ChatError):
        queue.run("d", lambda: None)  # three wait already
    pending.callback(None)
    assert queue.running == 0 and queue.waiting == 0
    queue.run("a", lambda: None)  # its share is free again


def test_a_failing_job_frees_its_slot():
    queue = FairQueue(slots=1, per_source=1, queue=1)

    def boom():
        raise RuntimeError("argon2 fell over")

    d = queue.run("a", boom)
    assert isinstance(d.result.value, RuntimeError)
    d.addErrback(lambda f: None)
    assert queue.running == 0
    assert queue.run("a", lambda: 42).result == 42
