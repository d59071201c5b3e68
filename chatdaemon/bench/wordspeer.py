"""Twisted Words' IRC server as a comparison peer: `python -m chatdaemon.bench.wordspeer --port P`.

This is `twistd words --irc-port=...` with the two things a benchmark needs that the tap cannot
give on Python 3: channels made on first JOIN (the tap's `--group` option is broken on Python 3,
and its realm refuses unknown channels), and any NICK/PASS accepted (no password file of 10,000
users). The message path (IRCUser, Group.receive, the realm) is Twisted Words' own, untouched.
"""

import argparse

from twisted.cred import credentials, portal
from twisted.cred.checkers import ICredentialsChecker
from twisted.internet import defer, endpoints, reactor
from twisted.words import service
from zope.interface import implementer


@implementer(ICredentialsChecker)
class AnyPassword:
    credentialInterfaces = (credentials.IUsernamePassword,)

    def requestAvatarId(self, creds: credentials.IUsernamePassword) -> defer.Deferred:
        return defer.succeed(creds.username)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interface", default="127.0.0.1")
    args = parser.parse_args()
    realm = service.InMemoryWordsRealm("bench.words")
    realm.createGroupOnRequest = True
    realm.createUserOnRequest = True
    factory = service.IRCFactory(realm, portal.Portal(realm, [AnyPassword()]))
    endpoint = endpoints.TCP4ServerEndpoint(reactor, args.port, interface=args.interface)

    def listening(port) -> None:
        print(f"words listening on {args.interface}:{port.getHost().port}", flush=True)

    endpoint.listen(factory).addCallback(listening)
    reactor.run()


if __name__ == "__main__":
    main()
