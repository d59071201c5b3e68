"""Transports move bytes: they frame them for a Session and know nothing of chat."""

from twisted.internet.interfaces import IConsumer, IPushProducer, ITCPTransport


class IStreamTransport(ITCPTransport, IConsumer, IPushProducer):
    """The byte transport under a connection, as the transports here use it: TCP (or TLS over it), which
    takes a producer (the Session) and can itself be paused. A type for the checker: what tcp.Server and
    TLSMemoryBIOProtocol both provide; nothing declares or checks it at run time."""
