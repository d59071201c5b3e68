"""chatd-bench: the benchmark shipped with chatd (docs/performance.md).

chatd-bench seed --data-dir DIR --users N [--prefix bench] [--config chatd.toml]
chatd-bench run [S1 S2 S3 D L] --spawn [--pin-daemon 0 --pin-self 1] [--repeat 3] [--json FILE]
chatd-bench run S1 --host 127.0.0.1 --port 7070 --daemon-pid PID --accounts DIR/bench-accounts.json
chatd-bench run S1 S2 --protocol irc --spawn ngircd
chatd-bench config            # the BENCH.toml limits, for a daemon you start yourself
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib

from . import daemon as proc
from . import report
from .accounts import Accounts, accounts_path, load, new_accounts
from .dialects import ADAPTERS, Irc, Redis, adapter
from .scenarios import ORDER, Settings, run_scenario

VERSION = "1"


def _cpu(text: str) -> int:
    value = int(text)
    if not 0 <= value < (os.cpu_count() or 1):
        raise argparse.ArgumentTypeError(f"no CPU {value} here (0-{(os.cpu_count() or 1) - 1})")
    return value


def _argon2(text: str) -> tuple[int, int, int]:
    try:
        t, m, p = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected TIME,MEMORY_KIB,PARALLELISM, e.g. 3,65536,4") from None
    return t, m, p


def _setting(text: str) -> tuple[str, str, str]:
    name, sep, value = text.partition("=")
    section, dot, key = name.strip().partition(".")
    try:
        tomllib.loads(f"v = {value}")
    except tomllib.TOMLDecodeError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a TOML value (a string needs quotes)") from None
    if not (sep and dot and section and key):
        raise argparse.ArgumentTypeError('expected SECTION.KEY=VALUE, e.g. storage.synchronous="NORMAL"')
    return section, key, value.strip()


def _rates(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="chatd-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = top.add_subparsers(dest="command", required=True)

    seed = sub.add_parser("seed", help="write bench accounts into a STOPPED daemon's store")
    seed.add_argument("--data-dir", required=True, help="the daemon's --data-dir")
    seed.add_argument("--users", type=int, required=True, help="how many accounts (PREFIX0 .. PREFIX{N-1})")
    seed.add_argument("--prefix", default="bench", help="account names' prefix (default: bench)")
    seed.add_argument("--config", help="the daemon's TOML config: the password hash is made at its argon2 cost")

    sub.add_parser("config", help="print the TOML limits chatd-bench runs a daemon with")

    run = sub.add_parser("run", help="run scenarios against a daemon")
    run.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"any of {' '.join(ORDER)} (default: all)")
    target = run.add_argument_group("the server")
    target.add_argument(
        "--spawn",
        nargs="?",
        const="chatd",
        choices=["chatd", "ngircd", "words"],
        help="start the server here (chatd: seeded, with BENCH.toml's limits), run, and stop it",
    )
    target.add_argument("--data-dir", help="with --spawn chatd: keep its state here (default: a temporary directory)")
    target.add_argument("--argon2", type=_argon2, help="with --spawn chatd: argon2 TIME,MEMORY_KIB,PARALLELISM")
    target.add_argument(
        "--set",
        type=_setting,
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help='with --spawn chatd: one more line of BENCH.toml, e.g. storage.synchronous="NORMAL" (repeatable)',
    )
    target.add_argument("--twistd", help="with --spawn chatd: the twistd to run (default: next to this Python)")
    target.add_argument("--host", default="127.0.0.1")
    target.add_argument("--port", type=int, default=7070, help="line (or IRC) port")
    target.add_argument("--ws-port", type=int, default=8080, help="HTTP port (the WebSocket is at /ws)")
    target.add_argument("--daemon-pid", type=int, help="the server's pid (for CPU, memory and pinning)")
    target.add_argument("--pidfile", help="read the server's pid from this file")
    target.add_argument("--accounts", help="bench-accounts.json written by `seed` (default: DATA_DIR's)")
    how = run.add_argument_group("how to talk")
    how.add_argument("--protocol", choices=["chatd", "irc", "redis"], default="chatd")
    how.add_argument(
        "--redis-prefix", default="chatd-bench:", help="Redis: channel names start with this (chatd-bench:)"
    )
    how.add_argument("--irc-pass", help="IRC: send this PASS before NICK (a server with a password)")
    how.add_argument(
        "--irc-oper",
        metavar="NAME:PASSWORD",
        help="IRC: OPER and set user mode +F (ngircd's relaxed flood control; --spawn ngircd does it)",
    )
    how.add_argument("--transport", choices=["line", "ws"], default="line")
    how.add_argument("--dialect", choices=[n for n in ADAPTERS if n not in ("irc", "redis")], default="typed")
    bounds = run.add_argument_group("bounds and output")
    bounds.add_argument("--duration", type=float, default=10.0, help="seconds of each measured window (10)")
    bounds.add_argument("--messages", type=int, default=0, help="stop sending after this many messages")
    bounds.add_argument("--timeout", type=float, default=300.0, help="hard limit on each scenario run, seconds")
    bounds.add_argument("--repeat", type=int, default=1, help="run each scenario N times; report medians")
    bounds.add_argument("--json", help="write every number as JSON to FILE ('-': stdout)")
    bounds.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    bounds.add_argument(
        "--wait-quiet",
        type=float,
        metavar="PCT",
        help="before each run, wait until the rest of the host uses under PCT %% of a core (a shared machine)",
    )
    bounds.add_argument(
        "--wait-quiet-max", type=float, default=600.0, help="the longest --wait-quiet waits, seconds (600)"
    )
    bounds.add_argument("--pin-daemon", type=_cpu, metavar="CPU", help="pin the server to this CPU")
    bounds.add_argument("--pin-self", type=_cpu, metavar="CPU", help="pin chatd-bench to this CPU")
    bounds.add_argument("--text-bytes", type=int, default=32, help="length of each message text (32)")
    bounds.add_argument(
        "--quickack",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ACK every read at once (TCP_QUICKACK, the default): a server that leaves Nagle on otherwise waits "
        "for the client's delayed ACK (40 ms) before each small reply; --no-quickack measures that (see "
        "docs/performance.md)",
    )
    bounds.add_argument("--concurrency", type=int, default=50, help="connections being set up at once (50)")
    sizes = run.add_argument_group("scenario sizes")
    sizes.add_argument("--s1-members", type=int, default=200)
    sizes.add_argument("--s1-senders", type=int, default=20)
    sizes.add_argument("--s2-users", type=int, default=1000)
    sizes.add_argument("--s2-room-size", type=int, default=20)
    sizes.add_argument("--s2-rate", type=float, default=2000.0, help="offered sends/s (2000)")
    sizes.add_argument("--s2-senders", type=int, default=0, help="how many users send (default: all)")
    sizes.add_argument(
        "--s2-sweep", type=_rates, default=[], metavar="R1,R2,...", help="run S2 at each rate; report the best"
    )
    sizes.add_argument("--slo-ms", type=float, default=25.0, help="the p99 the sweep looks for (25)")
    sizes.add_argument("--s3-connections", type=int, default=10000)
    sizes.add_argument("--d-senders", type=int, default=20)
    sizes.add_argument("--d-window", type=int, default=32, help="sends each D sender keeps unacknowledged (32)")
    sizes.add_argument("--d-messages", type=int, default=100000)
    sizes.add_argument("--l-logins", type=int, default=40)
    sizes.add_argument("--l-concurrency", type=int, default=8)
    return top


def needed_users(args, scenarios: list[str]) -> int:
    need = {
        "S1": args.s1_members,
        "S2": args.s2_users,
        "S3": args.s3_connections,
        "D": 2 * args.d_senders,
        # every login its own account: the login throttle lets at most throttle.login_failures_per_account
        # undecided logins of one account through at once (any of them might fail)
        "L": args.l_logins,
    }
    return max(need[s] for s in scenarios)


def cmd_seed(args) -> int:
    from .seedstore import seed_store

    os.makedirs(args.data_dir, exist_ok=True)
    path = accounts_path(args.data_dir)
    accounts = None
    if os.path.exists(path):
        old = load(path)
        if old.prefix == args.prefix:
            accounts = Accounts(old.prefix, max(old.users, args.users), old.password, old.secret)
    if accounts is None:
        accounts = new_accounts(args.prefix, args.users)
    result = seed_store(args.data_dir, args.config, accounts)
    accounts.save(path)
    print(
        f"chatd-bench: {accounts.users} accounts {accounts.prefix}0..{accounts.prefix}{accounts.users - 1} in "
        f"{args.data_dir} ({result.get('created', 0)} created, {result.get('keys_added', 0)} keys added, "
        f"argon2 hash {result.get('hash_seconds')} s, {result.get('seconds')} s in all); accounts file: {path}"
    )
    return 0


def _seed_subprocess(data_dir: str, users: int, config: str) -> None:
    """Seeding runs a Twisted reactor: in a process of its own."""
    cmd = [sys.executable, "-m", "chatdaemon.bench.cli", "seed", "--data-dir", data_dir, "--users", str(users)]
    subprocess.run([*cmd, "--config", config], check=True, stdout=sys.stderr)


def _irc(args: argparse.Namespace) -> Irc:
    password: str = args.irc_pass or ("bench" if args.spawn == "words" else "")
    oper = args.irc_oper or (proc.NGIRCD_OPER if args.spawn == "ngircd" else "")
    return Irc(password, oper)


def cmd_run(args) -> int:
    scenarios = [s.upper() for s in args.scenarios] or list(ORDER)
    for s in scenarios:
        if s not in ORDER:
            raise SystemExit(f"chatd-bench: unknown scenario {s!r} (choose from {' '.join(ORDER)})")
    irc = args.protocol == "irc" or args.spawn in ("ngircd", "words")
    redis = args.protocol == "redis"
    if (irc or redis) and args.transport == "ws":
        raise SystemExit("chatd-bench: IRC and Redis run over the line transport only")
    if redis and args.spawn:
        raise SystemExit("chatd-bench: --protocol redis runs against a running redis-server (--port 6379)")
    if args.pin_self is not None:
        os.sched_setaffinity(0, {args.pin_self})
    proc.raise_fd_limit(max(4096, (args.s3_connections + 1000) if "S3" in scenarios else 0))

    server: proc.Server | None = None
    temp_dir = None
    restore_affinity: dict[int, set[int]] = {}
    out: dict = {
        "chatd_bench": VERSION,
        "machine": report.machine(),
        "command": " ".join(["chatd-bench", *sys.argv[1:]]),
        "scenarios": {},
    }
    try:
        if args.spawn == "chatd":
            data_dir = args.data_dir or tempfile.mkdtemp(prefix="chatd-bench-")
            temp_dir = None if args.data_dir else data_dir
            os.makedirs(data_dir, exist_ok=True)
            config = os.path.join(data_dir, "BENCH.toml")
            with open(config, "w") as f:
                f.write(proc.bench_toml(args.argon2, args.set))
            users = needed_users(args, scenarios)
            path = accounts_path(data_dir)
            if not os.path.exists(path) or load(path).users < users:
                _progress(args, f"seeding {users} accounts into {data_dir} ...")
                _seed_subprocess(data_dir, users, config)

            def start() -> proc.Server:
                return proc.spawn_chatd(data_dir, config, args.pin_daemon, twistd=args.twistd)

            server = start()
            accounts = load(path)
        elif args.spawn in ("ngircd", "words"):
            temp_dir = tempfile.mkdtemp(prefix=f"chatd-bench-{args.spawn}-")
            spawn = proc.spawn_ngircd if args.spawn == "ngircd" else proc.spawn_words
            work_dir = temp_dir

            def start() -> proc.Server:
                return spawn(work_dir, args.pin_daemon)

            server = start()
            accounts = Accounts("bench", 1 << 30, "", "")
        else:
            pid = args.daemon_pid or (proc.read_pidfile(args.pidfile) if args.pidfile else None)
            server = proc.Server("external", args.host, args.port, args.ws_port, pid)
            if irc or redis:
                accounts = Accounts("bench", 1 << 30, "", "")
            else:
                given = args.accounts or (accounts_path(args.data_dir) if args.data_dir else None)
                if not given or not os.path.exists(given):
                    raise SystemExit(
                        "chatd-bench: no accounts: seed the stopped daemon first (chatd-bench seed --data-dir DIR "
                        "--users N), then pass --accounts DIR/bench-accounts.json (or --data-dir DIR)"
                    )
                accounts = load(given)
            if pid is not None and args.pin_daemon is not None:
                restore_affinity = proc.pin(pid, args.pin_daemon)
        out["server"] = {
            "kind": server.kind,
            "host": server.host,
            "port": server.port,
            "ws_port": server.ws_port,
            "pid": server.pid,
            "protocol": "irc" if irc else "redis" if redis else "chatd",
            "transport": args.transport,
            "dialect": "irc" if irc else "redis" if redis else args.dialect,
            "pinned_daemon_cpu": args.pin_daemon,
            "pinned_self_cpu": args.pin_self,
        }
        if server.pid is None:
            out["server"]["note"] = "no pid: daemon CPU and memory are unavailable"
        settings = Settings(
            host=server.host,
            port=server.port,
            ws_port=server.ws_port,
            transport=args.transport,
            adapter=_irc(args) if irc else Redis(args.redis_prefix) if redis else adapter(args.dialect),
            accounts=accounts,
            pid=server.pid,
            duration=args.duration,
            messages=args.messages,
            timeout=args.timeout,
            quiet=args.quiet,
            text_bytes=args.text_bytes,
            concurrency=args.concurrency,
            s1_members=args.s1_members,
            s1_senders=args.s1_senders,
            s2_users=args.s2_users,
            s2_room_size=args.s2_room_size,
            s2_rate=args.s2_rate,
            s2_senders=args.s2_senders,
            s2_sweep=args.s2_sweep,
            slo_ms=args.slo_ms,
            s3_connections=args.s3_connections,
            d_senders=args.d_senders,
            d_window=args.d_window,
            d_messages=args.d_messages,
            l_logins=args.l_logins,
            l_concurrency=args.l_concurrency,
            quickack=args.quickack,
        )
        fresh = True  # nothing has run on this server yet
        out["settings"] = {k: v for k, v in vars(args).items() if k not in ("command",)}
        for name in scenarios:
            if (irc or redis) and name in ("L", "D"):
                why = "no password login to measure" if name == "L" else "nothing is acknowledged durably"
                out["scenarios"][name] = {"median": {"skipped": f"{settings.adapter.name}: {why}"}, "runs": []}
                continue
            runs = []
            for i in range(args.repeat):
                if name == "S3" and server.process is not None and not fresh:
                    # memory a server freed stays in its heap: each S3 run gets a server of its own
                    server.stop()
                    server = start()
                    settings.host, settings.port, settings.ws_port = server.host, server.port, server.ws_port
                    settings.pid = server.pid
                fresh = False
                host = None
                if args.wait_quiet is not None:
                    _progress(args, f"{name} run {i + 1}/{args.repeat}: waiting for a quiet host ...")
                    host = proc.wait_quiet_host(server.pid, args.wait_quiet, args.wait_quiet_max)
                _progress(args, f"{name} run {i + 1}/{args.repeat} ...")
                started = time.monotonic()
                result = run_scenario(name, settings)
                if host is not None:
                    result["host_before"] = host
                result["run_seconds"] = round(time.monotonic() - started, 2)
                runs.append(result)
            out["scenarios"][name] = {"median": report.combine(runs) if len(runs) > 1 else runs[0], "runs": runs}
    finally:
        if restore_affinity:
            proc.unpin(restore_affinity)
        if server is not None and server.process is not None:
            status = server.stop()
            out["daemon_stopped"] = True
            out["daemon_exit_status"] = status
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
    print(report.table(out["scenarios"]))
    if args.json:
        text = json.dumps(out, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    return 0


def _progress(args, text: str) -> None:
    if not args.quiet:
        print(f"chatd-bench: {text}", file=sys.stderr)


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM: stop like ^C, so that a spawned server is stopped too


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "run" and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
    if args.command == "seed":
        return cmd_seed(args)
    if args.command == "config":
        sys.stdout.write(proc.bench_toml())
        return 0
    try:
        return cmd_run(args)
    except KeyboardInterrupt:
        print("chatd-bench: interrupted", file=sys.stderr)
        return 130
    except proc.DaemonError as e:
        print(f"chatd-bench: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
