"""chatd: one chat core speaking five client dialects over line, TLS and WebSocket transports."""

__version__ = "0.1.0"
