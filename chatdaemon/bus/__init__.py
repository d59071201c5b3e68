"""The fan-out seam: IBus knows who is connected, hands events to their clients, and links the nodes.

The core publishes every event through it and asks it who is online. bus.local does it in one
process (a node alone); bus.redis links the nodes of a cluster through Redis. Either way the truth
stays in the store: what crosses nodes is either also in the store (wake-ups name a committed
message; a Change repeats a write) or passing (typing, presence, notices), and a node that may have
missed some hears `resync()` and reads again what matters from the store.

"This node" is one process; "every node" is the cluster (with bus.local, the same thing).
"""

from zope.interface import Attribute, Interface


class IBus(Interface):
    node_id = Attribute("This node's name: logs, /metrics and the admin shell show it.")

    def attach(user, client):
        """Note a logged-in client (an IClient); True if it is the user's first connection on this node."""

    def detach(user, client):
        """Forget a client; True if it was the user's last connection on this node."""

    def online(user):
        """Whether the user has a connection open on any node."""

    def connections(user):
        """How many connections the user has open on every node (as far as this node knows)."""

    def clients(user):
        """The user's open clients on this node."""

    def local_users():
        """Every user with a client attached on this node."""

    def online_users():
        """Every user with a client attached on any node."""

    def publish(event, users, exclude=None):
        """Deliver `event` to every client of every user in `users`, on every node, except `exclude`."""

    def deliver(event, users, exclude=None):
        """Deliver `event` to the clients of `users` on this node only, except `exclude`."""

    def kick(user, event):
        """Close every connection of `user` on every node, `event` (a Notice) being the last thing each is sent;
        the number of connections (as far as this node knows)."""

    def wake(room_id, message_id):
        """Tell the other nodes that this node committed message `message_id` in room `room_id`."""

    def share(change):
        """Tell the other nodes about a change of the live state (a core.state.Change)."""

    def listen(listener):
        """From now on, what the other nodes say goes to `listener` (an IBusListener)."""

    def report(stats):
        """This node's numbers (a JSON-able dict) for the admin shell's cluster-wide `stats`."""

    def nodes():
        """{node id: its last reported numbers} for every live node, this one included."""


class IBusListener(Interface):
    """What a node (the core) hears from the others through the bus."""

    def woken():
        """Another node committed a message: read what is new."""

    def changed(change):
        """Another node changed the live state."""

    def resync():
        """This node may have missed wake-ups or changes (the link to the others was down): read again."""

    def gone(users):
        """These users' connections were on a node that is gone, and they are not online elsewhere."""
