"""systemd's notification protocol (sd_notify): one datagram to $NOTIFY_SOCKET per state change.

Without $NOTIFY_SOCKET (not started by systemd with Type=notify) every call does nothing.
"""

import os
import socket
import time


def notify(*states: str) -> bool:
    """Send e.g. notify("READY=1", "STATUS=serving"); True if there was a socket to send to."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall("\n".join(states).encode("utf-8"))
    return True


def reloading() -> bool:
    """RELOADING=1, with the timestamp systemd asks for (Type=notify-reload)."""
    return notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec=), or None without a watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6
