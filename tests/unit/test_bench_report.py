"""chatd-bench's arithmetic: percentiles, medians of repeated runs, the marker in each message."""

from chatdaemon.bench.dialects import MARK, marker, own_prefix
from chatdaemon.bench.report import combine, table
from chatdaemon.bench.scenarios import percentiles


def test_percentiles_in_milliseconds():
    p = percentiles(list(range(1, 1001)))  # microseconds
    assert p == {"p50": 0.501, "p99": 0.991, "max": 1.0, "samples": 1000}
    assert percentiles([])["p99"] is None


def test_combine_takes_the_median_of_each_number():
    runs = [
        {"rate": 3.0, "lat": {"p99": 9}, "client_bound": False, "errors": ["a"]},
        {"rate": 1.0, "lat": {"p99": 7}, "client_bound": True, "errors": ["a", "b"]},
        {"rate": 2.0, "lat": {"p99": 8}, "client_bound": False},
    ]
    assert combine(runs) == {"rate": 2.0, "lat": {"p99": 8}, "client_bound": True, "errors": ["a", "b"]}
    sweeps = [{"sweep": [{"r": 1, "p99": x}, {"r": 2, "p99": 10 * x}]} for x in (1, 3, 2)]
    assert combine(sweeps) == {"sweep": [{"r": 1, "p99": 2}, {"r": 2, "p99": 20}]}


def test_the_marker_names_its_sender_uniquely():
    text = marker(11, 123456, 7).encode()
    assert text.startswith(MARK) and text.startswith(own_prefix(11))
    assert not text.startswith(own_prefix(1))


def test_the_table_shows_medians_and_runs():
    results = {"S1": {"median": {"deliveries_per_s": 2.0e6, "members": 200, "senders": 20}, "runs": [{}, {}]}}
    out = table(results)
    assert "2.00 M" in out and "200 / 20" in out


def test_redis_frames_are_resp_arrays():
    from chatdaemon.bench.dialects import JOIN_OK, LOGIN_OK, Redis

    r = Redis("p:")
    assert r.join("room", "me") == b"*2\r\n$9\r\nSUBSCRIBE\r\n$6\r\np:room\r\n"
    assert r.send("room", "~bz1.2.3~", 3, False) == b"*3\r\n$7\r\nPUBLISH\r\n$6\r\np:room\r\n$9\r\n~bz1.2.3~\r\n"
    assert r.classify(b"+PONG", "me") == LOGIN_OK and r.classify(b"subscribe", "me") == JOIN_OK
