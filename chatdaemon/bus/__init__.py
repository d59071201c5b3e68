"""The fan-out seam: IBus knows who is connected and hands events to their clients.

The core publishes every event through it and asks it who is online. bus.local does it in one
process. A multi-node bus implements the same interface and carries events between nodes; the
truth stays in the store.
"""

from zope.interface import Interface


class IBus(Interface):
    def attach(user, client):
        """Note a logged-in client (an IClient); True if it is the user's first connection."""

    def detach(user, client):
        """Forget a client; True if it was the user's last connection."""

    def online(user):
        """Whether the user has a connection open."""

    def clients(user):
        """The user's open clients."""

    def online_users():
        """Every user with a client attached."""

    def publish(event, users, exclude=None):
        """Deliver `event` to every client of every user in `users`, except `exclude`."""
