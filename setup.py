from setuptools import find_packages, setup

setup(
    name="chatd",
    version="0.1.0",
    description="A Twisted chat daemon speaking five client dialects on one core",
    python_requires=">=3.11",
    # twisted.plugins is listed by hand: find_packages() skips it (it has no __init__.py, on purpose).
    packages=[*find_packages(include=["chatdaemon", "chatdaemon.*"]), "twisted.plugins"],
    package_data={
        "chatdaemon.store": ["schema/*.sql"],
        "chatdaemon.web": ["static/*.html", "static/*.js", "static/*.css"],
    },
    install_requires=[
        "twisted[tls,conch]>=24.10",  # never twisted[http2]: h2 breaks WebSocketResource; conch: the SSH admin shell
        "autobahn>=26.10",
        "treq",
        "service-identity",
        "pyopenssl",
        "argon2-cffi>=23.1",
        "orjson>=3.9",
        "prometheus-client>=0.20",
        # several nodes (docs/scaling.md): PostgreSQL through psycopg 3 and its pool, Redis through txredisapi;
        # imported only when [store] url / [bus] url name them. Tested with psycopg 3.3.9, psycopg-pool 3.3.3,
        # txredisapi 1.6.0 (the first on ClientService, whose reconnecting chatd relies on).
        "psycopg[binary]>=3.2",
        "psycopg-pool>=3.2",
        "txredisapi>=1.6",
    ],
    # chatd-migrate: schema and data between engines (docs/scaling.md); chatd-bench: the benchmark of
    # docs/performance.md, shipped with the daemon (as redis-benchmark is with Redis).
    entry_points={
        "console_scripts": [
            "chatd-migrate = chatdaemon.migrate_cli:main",
            "chatd-bench = chatdaemon.bench.cli:main",
        ]
    },
    # playwright drives Debian's /usr/bin/chromium (installed by `make test`); its own browser downloads are never used.
    # ruff, mypy and mypy-zope: `make lint` (run by `make test`); the versions it was last checked with.
    # irc (jaraco's): an IRC client library, the second client of the IRC tests (irssi is the first);
    # 20.5, the one tested, logs in with SASL.
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-twisted>=1.14",
            "hypothesis",
            "playwright>=1.45",
            "irc>=20.5",
            "ruff>=0.17.6",
            "mypy>=2.4.1",
            "mypy-zope>=1.0.17",
        ]
    },
)
