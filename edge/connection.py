"""Where the broker is and how to reach it: the URL (or a cluster's URLs), credentials and TLS.

``mqtt://HOST[:PORT]`` (1883 by default) or ``mqtts://HOST[:PORT]`` (TLS, 8883 by default),
read by ``epic.shared.wire.endpoint`` as the centre reads it. A CA file (``--tls-ca``) also switches
TLS on, checked against that CA; ``mqtts://`` without one uses the system's CAs. Credentials
come from options or the environment, never from the URL's log form
(``BrokerEndpoint.display`` leaves the password out).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiomqtt

from epic.shared.errors import DataError, OptionError
from epic.shared.wire import parse_broker_urls

__all__ = ["BrokerAddressError", "BrokerEndpoint"]


class BrokerAddressError(OptionError):
    """``--broker`` is not a broker URL; ``str()`` is ``--broker: <why, what to write>``."""

    def __init__(self, problem: str) -> None:
        super().__init__("--broker", problem)


@dataclass(frozen=True)
class BrokerEndpoint:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_ca: Path | None = None
    # The other nodes of a broker cluster (host, port), tried in turn after this one.
    others: tuple[tuple[str, int], ...] = ()

    @classmethod
    def parse(
        cls,
        url: str,
        username: str | None = None,
        password: str | None = None,
        tls_ca: Path | str | None = None,
    ) -> BrokerEndpoint:
        """Read ``mqtt://HOST:PORT`` (or ``mqtts://``), or a comma-separated list of a
        cluster's nodes; a bad URL is one ``BrokerAddressError``."""
        try:
            parsed, *rest = parse_broker_urls(url)
        except ValueError as exc:
            raise BrokerAddressError(str(exc)) from None
        ca = Path(tls_ca) if tls_ca is not None else None
        if ca is not None and not ca.is_file():
            raise DataError(ca, "no such CA file")
        return cls(
            host=parsed.host,
            port=parsed.port,
            tls=parsed.tls or ca is not None,
            username=username or parsed.username,
            password=password or parsed.password,
            tls_ca=ca,
            others=tuple((node.host, node.port) for node in rest),
        )

    @property
    def nodes(self) -> list[tuple[str, int]]:
        return [(self.host, self.port), *self.others]

    def node(self, attempt: int) -> BrokerEndpoint:
        """The node to try at the ``attempt``-th connection: the list's, in turn."""
        host, port = self.nodes[attempt % len(self.nodes)]
        return replace(self, host=host, port=port, others=())

    @property
    def display(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        try:
            return ssl.create_default_context(
                cafile=str(self.tls_ca) if self.tls_ca is not None else None
            )
        except (ssl.SSLError, OSError) as exc:
            raise DataError(self.tls_ca or "tls", f"cannot load the CA ({exc})") from exc

    def client(
        self,
        identifier: str,
        will: aiomqtt.Will | None = None,
        keepalive: int = 30,
        timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> aiomqtt.Client:
        """A fresh MQTT 3.1.1 client (aiomqtt clients are made anew for each connection)."""
        return aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=identifier,
            protocol=aiomqtt.ProtocolVersion.V311,
            will=will,
            clean_session=True,
            keepalive=keepalive,
            timeout=timeout,
            tls_context=tls_context,
        )
