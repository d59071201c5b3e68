"""`twistd chatd`: command-line options and the service they build."""

from twisted.internet import reactor
from twisted.python import usage

from . import config as configuration
from .listeners import check_endpoint
from .service import ChatService


class Options(usage.Options):
    synopsis = "[--line ENDPOINT]... [--http ENDPOINT]... [--data-dir DIR] [--config FILE]"
    longdesc = (
        "chatd: one chat core speaking the typed (seeds 000/002) and text dialects over line transports. "
        "Listener options take Twisted endpoint strings (tcp:PORT[:interface=ADDR], "
        "ssl:PORT:privateKey=KEY.pem:certKey=CERT.pem, systemd:domain=INET:name=NAME) and may repeat; "
        "given on the command line they replace the config file's list. "
        "Defaults: --line tcp:7070:interface=127.0.0.1, --http tcp:8080:interface=127.0.0.1."
    )
    optParameters = [
        ["data-dir", "d", None, "Directory for the database (default: ./var, or data_dir in the config file)."],
        ["config", "c", None, "TOML configuration file; every key is documented in etc/chatd.toml."],
    ]

    def __init__(self):
        super().__init__()
        self["line"], self["http"] = [], []

    def opt_line(self, description: str) -> None:
        """Line transport endpoint (one JSON object or text command per line), e.g. tcp:7070 or ssl:7071:privateKey=key.pem:certKey=cert.pem. Repeatable."""  # noqa: E501
        self["line"].append(description)

    def opt_http(self, description: str) -> None:
        """HTTP endpoint, plain or TLS; serves GET /health for now (the WebSocket, REST API and web page come in a later release). Repeatable."""  # noqa: E501
        self["http"].append(description)

    def opt_admin(self, description: str) -> None:
        """SSH admin shell endpoint (default tcp:2222:interface=127.0.0.1). NOT AVAILABLE YET: the admin shell comes in a later release, and this option is refused until then."""  # noqa: E501
        raise usage.UsageError("--admin: the SSH admin shell is not available in this version of chatd")

    def postOptions(self) -> None:
        try:
            config = configuration.load(self["config"]) if self["config"] else configuration.Config()
        except configuration.ConfigError as e:
            raise usage.UsageError(f"config: {e}") from None
        overrides = {key: tuple(self[key]) for key in ("line", "http") if self[key]}
        if self["data-dir"]:
            overrides["data_dir"] = self["data-dir"]
        config = configuration.replace(config, **overrides)
        for role in ("line", "http"):
            for description in getattr(config, role):
                try:
                    check_endpoint(reactor, description)
                except (ValueError, OSError) as e:
                    raise usage.UsageError(f"--{role} {description}: {e}") from None
        self.config = config


def makeService(options: Options) -> ChatService:
    return ChatService(options.config, reactor)
