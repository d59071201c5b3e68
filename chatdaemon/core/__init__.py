"""The chat core: accounts, presence, rooms, messages and offline delivery; no sockets, no JSON."""
