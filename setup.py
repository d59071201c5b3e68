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
    ],
    # playwright drives Debian's /usr/bin/chromium (installed by `make test`); its own browser downloads are never used.
    # chatd-bench: the benchmark of docs/performance.md, shipped with the daemon (as redis-benchmark is with Redis).
    entry_points={"console_scripts": ["chatd-bench=chatdaemon.bench.cli:main"]},
    extras_require={"test": ["pytest>=8", "pytest-twisted>=1.14", "hypothesis", "playwright>=1.45"]},
)
