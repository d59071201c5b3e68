"""TLS for "tls:ENDPOINT" listeners, with certificate files that can be read again while serving.

A listener written "tls:tcp:7071" (or "tls:systemd:domain=INET:name=...") is the
inner endpoint with its factory wrapped in TLSMemoryBIOFactory. Every new
connection asks `serverConnectionForTLS`, so after `load()` new connections get the new
certificate while open ones keep theirs. Twisted's own "ssl:" endpoints read
their files once, and cannot wrap a socket inherited from systemd.
"""

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.ssl import CertificateOptions
from zope.interface import implementer

PREFIX = "tls:"


class TLSFileError(ValueError):
    """A certificate or key file that cannot be used, with the reason."""


def _options(certificate: str, private_key: str) -> CertificateOptions:
    try:
        with open(certificate, "rb") as f:
            chain = x509.load_pem_x509_certificates(f.read())
        with open(private_key, "rb") as f:
            key = load_pem_private_key(f.read(), password=None)
    except OSError as e:
        raise TLSFileError(f"{e.filename}: {e.strerror}") from None
    except (ValueError, TypeError) as e:
        raise TLSFileError(f"{certificate} / {private_key}: {e}") from None
    if chain[0].public_key() != key.public_key():
        raise TLSFileError(f"{private_key} is not the key of the certificate in {certificate}")
    # pyOpenSSL takes cryptography's objects as they are (its own PKey/X509 are deprecated);
    # Twisted's annotations still name only PKey and X509.
    return CertificateOptions(privateKey=key, certificate=chain[0], extraCertChain=chain[1:])  # type: ignore[arg-type]


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableTLS:
    """Server TLS whose certificate and key files can be read again."""

    def __init__(self, certificate: str, private_key: str):
        self.load(certificate, private_key)

    def load(self, certificate: str, private_key: str) -> None:
        """Read the files (again); on TLSFileError the current certificate stays."""
        self._options = _options(certificate, private_key)

    def serverConnectionForTLS(self, protocol):
        return self._options.serverConnectionForTLS(protocol)
