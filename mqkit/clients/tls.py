"""TLS for every client: one SSL context, verified against ``MQKIT_CA_FILE`` or the system.

A classroom broker reached over a real network is reached with ``amqps://``, ``mqtts://``
and ``https://`` URLs. Its certificate is checked (never skipped) against the CA file that
the card names, or the system's CAs for a broker with a public certificate.

Example:
    >>> context = tls_context()   # doctest: +SKIP
"""

from __future__ import annotations

import ssl

from mqkit.config import Settings
from mqkit.exceptions import ConfigError

#: The hint of a certificate that does not verify.
HINT_CA = ("The broker's certificate is not signed by a CA this machine trusts: set "
           "MQKIT_CA_FILE to the classroom's CA certificate (your card names it), and use "
           "the host name the certificate was made for.")


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A client context that verifies the server's certificate and host name.

    Args:
        ca_file: a PEM CA certificate (default: ``MQKIT_CA_FILE``; none: the system's CAs).

    Raises:
        ConfigError: the CA file cannot be read as a certificate.
    """
    ca_file = Settings.from_env().ca_file if ca_file is None else ca_file
    try:
        return ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"The CA file {ca_file!r} cannot be read as a PEM certificate: "
                          f"{exc}.", hint="MQKIT_CA_FILE must name the CA's certificate "
                                          "(PEM), not a key or a server certificate.") \
            from None


def is_certificate_error(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) is a failed certificate check."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__ or (  # type: ignore[assignment]
            exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None)
    return False
