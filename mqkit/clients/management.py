"""RabbitMQ's management HTTP API: the one HTTP client of mqkit, with one error mapping.

Readiness probes, :class:`~mqkit.admin.Admin`, TopologyView, the checks and the grader all
send their requests through :class:`ManagementClient`. Plain ``urllib`` with basic auth, no
extra dependency. Errors map the same way for everyone:

* HTTP 401 or 403 → :class:`~mqkit.exceptions.AuthenticationError`;
* HTTP 404 → :class:`~mqkit.exceptions.ResourceNotFound` (no such vhost, user, queue…);
* HTTP 400 → :class:`~mqkit.exceptions.ConfigError` (a bad argument);
* no answer, or any other status → :class:`~mqkit.exceptions.BrokerConnectionError`.

Example:
    >>> api = ManagementClient(endpoints)      # doctest: +SKIP
    >>> api.get("overview")["rabbitmq_version"]  # doctest: +SKIP
    '3.10.8'
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from mqkit.exceptions import (
    AuthenticationError,
    BrokerConnectionError,
    ConfigError,
    ResourceNotFound,
)
from mqkit.urls import BrokerAddress, parse_url

if TYPE_CHECKING:
    from mqkit.endpoints import Endpoints


class ManagementClient:
    """Requests to ``/api/…`` of one RabbitMQ management API, as one user.

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints`, a management URL
            ``http://user:pass@127.0.0.1:PORT``, or its parsed :class:`BrokerAddress`.
        timeout: seconds per request.

    Raises:
        ConfigError: there is no management URL, or it is malformed.
    """

    def __init__(self, endpoints_or_url: Endpoints | str | BrokerAddress,
                 timeout: float = 10.0) -> None:
        if isinstance(endpoints_or_url, BrokerAddress):
            address = endpoints_or_url
        else:
            url = (endpoints_or_url if isinstance(endpoints_or_url, str)
                   else endpoints_or_url.management_url)
            if not url:
                raise ConfigError("These brokers have no management API URL.",
                                  hint="Start the brokers with mqkit.start_brokers(), or set "
                                       "MQKIT_MANAGEMENT_URL for an external broker.")
            address = parse_url(url, ("http", "https"), "management_url")
        self.address = address
        self.timeout = timeout
        self._base = f"{address.scheme}://{address.host}:{address.port}/api"
        token = f"{address.username or ''}:{address.password or ''}"
        self._auth = "Basic " + base64.b64encode(token.encode()).decode()

    def __repr__(self) -> str:
        return f"ManagementClient({self.address.redacted()})"

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None, *, timeout: float | None = None) -> Any:
        """Send one request to ``/api/<path>``; return the decoded JSON (``None`` if empty).

        Raises:
            AuthenticationError: HTTP 401 or 403.
            ResourceNotFound: HTTP 404 (unknown vhost, user, queue or exchange).
            ConfigError: HTTP 400 (a bad argument).
            BrokerConnectionError: no answer, or a server error.
        """
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self._base}/{path}", data=data, method=method)
        request.add_header("Authorization", self._auth)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        shown = f"{method} {self._base}/{path}"
        context = None
        if self.address.is_tls:  # https://: verified against MQKIT_CA_FILE
            from mqkit.clients.tls import tls_context

            context = tls_context()
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout,
                                        context=context) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, shown, self.address) from None
        except (urllib.error.URLError, OSError) as exc:
            from mqkit.clients.tls import HINT_CA, is_certificate_error

            raise BrokerConnectionError(
                f"No answer from the management API (host={self.address.host}, "
                f"port={self.address.port}) for {shown}: {exc}.",
                hint=HINT_CA if is_certificate_error(exc) else
                "Is RabbitMQ running with the management plugin? Try `mqkit status`."
            ) from None
        return json.loads(payload) if payload.strip() else None

    def get(self, path: str, *, timeout: float | None = None) -> Any:
        """GET ``/api/<path>``."""
        return self.request("GET", path, timeout=timeout)


def _http_error(exc: urllib.error.HTTPError, shown: str,
                address: BrokerAddress) -> BrokerConnectionError | ConfigError:
    reason = _error_reason(exc)
    if exc.code in (401, 403):
        return AuthenticationError(
            f"The management API refused {shown} for user {address.username!r}: "
            f"HTTP {exc.code} {reason}.",
            hint="Check the credentials in the management URL; the user needs the "
                 "management tag (administering vhosts and users needs administrator).")
    if exc.code == 404:
        return ResourceNotFound(f"The management API has no {shown.split('/api/', 1)[-1]!r}: "
                                f"HTTP 404 {reason}.",
                                hint="Check the names: does the vhost, user, queue or "
                                     "exchange exist?")
    if exc.code == 400:
        return ConfigError(f"The management API rejected {shown}: HTTP 400 {reason}.",
                           hint="Check the arguments of the request.")
    return BrokerConnectionError(f"The management API failed {shown}: HTTP {exc.code} "
                                 f"{reason}.",
                                 hint="The broker may still be starting; otherwise see its "
                                      "log (`mqkit logs rabbitmq`).")


def _error_reason(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
        return str(body.get("reason") or body.get("error") or exc.reason)
    except (ValueError, OSError, AttributeError):
        return str(exc.reason)
