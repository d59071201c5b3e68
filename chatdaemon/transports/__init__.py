"""Transports move bytes: they frame them for a Session and know nothing of chat."""
