"""chatd-bench: the benchmark shipped with chatd, as redis-benchmark ships with Redis.

Modules: cli (the console script), scenarios (S1, S2, S3, D, L), net (the epoll client loop),
wsframe (minimal WebSocket client framing), dialects (one adapter per protocol), daemon (spawning,
pinning and measuring the server), accounts (names and derived session keys), seedstore (the one
place that writes into chatd's store), report (medians, table, JSON), wordspeer (Twisted Words as
an IRC comparison peer). See docs/performance.md.
"""
