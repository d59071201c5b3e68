"""What the core asks of whoever runs commands (IPrincipal) and of a connected client (IClient).

A Session (one connection, any transport) is an IClient. The REST API's per-request caller and the
admin shell's operator are only principals: they run commands but receive no events.
"""

from zope.interface import Attribute, Interface


class IPrincipal(Interface):
    user = Attribute("The logged-in user's name, or None; set by the core at login and logout.")
    key_hash = Attribute("The SHA-256 of the session key it logged in with, or None; set by the core.")
    open = Attribute("True while it can be attached to the bus (a connection that is still open).")
    operator = Attribute("True only for the admin shell: may run the operators' commands.")
    peer = Attribute("Where it comes from (an address, for throttling and logs), or ''.")


class IClient(IPrincipal):
    def deliver(event, memo):
        """Queue `event` for the client. `memo` is one dict shared by every recipient of this one publish:
        the client may keep its encoding there, under its dialect's name, for the others to reuse."""

    def hold():
        """Keep live events aside while what the user missed is replayed."""

    def release():
        """End the replay: send what was held, after it."""

    def writable():
        """A Deferred that fires when the client can take more output (for a client still in a handshake,
        such as an IRC registration, once it has finished)."""

    def delivered_upto(fanout):
        """The highest message id this client surely received, given that every id up to `fanout` was
        handed to the bus."""

    def notify_close(event):
        """Send `event` (a Notice) as the last thing, and close."""
