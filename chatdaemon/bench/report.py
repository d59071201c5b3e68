"""Results: medians over repeated runs, the human table, the JSON document."""

import os
import platform
import statistics
import time
from typing import Any


def combine(values: list) -> Any:
    """The median of repeated results, leaf by leaf (numbers: median; flags: any; lists of results: by position)."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    if all(isinstance(v, dict) for v in present):
        keys: list[str] = []
        for v in present:
            keys += [k for k in v if k not in keys]
        return {k: combine([v.get(k) for v in present]) for k in keys}
    if all(isinstance(v, bool) for v in present):
        return any(present)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        m = statistics.median(present)
        return round(m, 4) if isinstance(m, float) else m
    if all(isinstance(v, list) for v in present):
        if all(v and all(isinstance(x, dict) for x in v) for v in present) and len({len(v) for v in present}) == 1:
            return [combine(list(items)) for items in zip(*present, strict=True)]
        merged: list = []
        for v in present:
            merged += [x for x in v if x not in merged]
        return merged[:20]
    return present[-1]


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if abs(v) >= 1e6:
            return f"{v / 1e6:.2f} M"
        if abs(v) >= 1e4:
            return f"{v / 1e3:.1f} k"
        return f"{v:.4g}" if abs(v) < 10 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _get(d: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(part)
    return d


# (label, path in a result) per scenario, for the table
ROWS = {
    "S1": [
        ("deliveries/s", "deliveries_per_s"),
        ("acked sends/s", "acked_sends_per_s"),
        ("latency p50 ms", "latency_ms.p50"),
        ("latency p99 ms", "latency_ms.p99"),
        ("latency max ms", "latency_ms.max"),
        ("delivered/expected", "delivered_over_expected"),
        ("daemon CPU %", "daemon_cpu_pct"),
        ("bench CPU %", "bench_cpu_pct"),
        ("other processes CPU %", "others_cpu_pct"),
        ("members / senders", "members"),
    ],
    "S2": [
        ("offered sends/s", "offered_rate"),
        ("latency p50 ms", "latency_ms.p50"),
        ("latency p99 ms", "latency_ms.p99"),
        ("latency max ms", "latency_ms.max"),
        ("delivered/offered", "delivered_over_offered"),
        ("acked sends/s", "acked_sends_per_s"),
        ("daemon CPU %", "daemon_cpu_pct"),
        ("bench CPU %", "bench_cpu_pct"),
        ("other processes CPU %", "others_cpu_pct"),
        ("send lag p99 ms", "send_lag_ms.p99"),
        ("daemon peak RSS KiB", "rss_peak_kib"),
    ],
    "S3": [
        ("connections ok", "ok"),
        ("KiB per connection", "kib_per_connection"),
        ("seconds to connect all", "connect_s"),
        ("connects/s", "connects_per_s"),
        ("daemon RSS before KiB", "rss_before_kib"),
        ("daemon RSS after KiB", "rss_after_kib"),
        ("bench CPU %", "bench_cpu_pct"),
        ("other processes CPU %", "others_cpu_pct"),
    ],
    "D": [
        ("one room: acked/s", "room.acked_sends_per_s"),
        ("one room: ack p50 ms", "room.ack_latency_ms.p50"),
        ("one room: ack p99 ms", "room.ack_latency_ms.p99"),
        ("one room: daemon CPU %", "room.daemon_cpu_pct"),
        ("one room: others CPU %", "room.others_cpu_pct"),
        ("direct: acked/s", "direct.acked_sends_per_s"),
        ("direct: ack p50 ms", "direct.ack_latency_ms.p50"),
        ("direct: ack p99 ms", "direct.ack_latency_ms.p99"),
        ("direct: daemon CPU %", "direct.daemon_cpu_pct"),
        ("direct: others CPU %", "direct.others_cpu_pct"),
    ],
    "L": [
        ("logins/s", "logins_per_s"),
        ("login p50 ms", "login_latency_ms.p50"),
        ("login p99 ms", "login_latency_ms.p99"),
        ("ok / failed", "ok"),
        ("daemon CPU %", "daemon_cpu_pct"),
        ("other processes CPU %", "others_cpu_pct"),
    ],
}


def table(results: dict) -> str:
    """Scenario, metric, median, and each run's value."""
    lines = [f"{'scenario':<9}{'metric':<28}{'median':>14}   runs"]
    lines.append("-" * 80)
    for name, entry in results.items():
        median, runs = entry.get("median") or {}, entry.get("runs") or []
        if name == "S2" and isinstance(median, dict) and "sweep" in median:
            for i, point in enumerate(median["sweep"]):
                rate = point.get("offered_rate")
                for label, path in (
                    ("p99 ms", "latency_ms.p99"),
                    ("delivered/offered", "delivered_over_offered"),
                    ("daemon CPU %", "daemon_cpu_pct"),
                ):
                    each = [_fmt(_get(r["sweep"][i], path)) if "sweep" in r else "-" for r in runs]
                    lines.append(
                        f"{name:<9}{f'@{rate:g}/s ' + label:<28}{_fmt(_get(point, path)):>14}   {', '.join(each)}"
                    )
            label = f"best rate, p99 <= {median.get('slo_ms')} ms"
            lines.append(f"{name:<9}{label:<28}{_fmt(median.get('best_rate')):>14}")
            continue
        if isinstance(median, dict) and "skipped" in median:
            lines.append(f"{name:<9}{'skipped':<28}{median['skipped']}")
            continue
        for label, path in ROWS.get(name, []):
            value = _get(median, path)
            if name == "S1" and path == "members":
                value = f"{_get(median, 'members')} / {_get(median, 'senders')}"
            elif name == "L" and path == "ok":
                value = f"{_get(median, 'ok')} / {_get(median, 'failed')}"
            values = ", ".join(_fmt(_get(r, path)) for r in runs) if len(runs) > 1 else ""
            lines.append(f"{name:<9}{label:<28}{_fmt(value):>14}   {values}")
        bound = [p for p in ("client_bound", "room.client_bound", "direct.client_bound") if _get(median, p)]
        if bound:
            lines.append(
                f"{name:<9}NOTE: the load generator used ~100 % of its core: these numbers are bounded by the client"
            )
        errors = _get(median, "errors")
        if errors:
            lines.append(f"{name:<9}errors: {'; '.join(str(e) for e in errors[:3])}")
    return "\n".join(lines)
