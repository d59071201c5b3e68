"""chatd: one chat core speaking several client dialects over line transports (TCP and TLS)."""

__version__ = "0.1.0"
