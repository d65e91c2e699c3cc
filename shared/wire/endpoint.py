"""The broker's address as a user writes it, read the same way by the edge and the centre.

``mqtt://HOST[:PORT]`` (1883 by default) or ``mqtts://HOST[:PORT]`` (TLS, 8883 by default);
``tcp://`` and ``ssl://`` are accepted as their aliases (paho's and Mosquitto's spelling),
and ``USER:PASSWORD@`` in the URL as credentials. A bad URL is one ``ValueError`` whose
text says what is wrong and what to write instead, worded once for both sides.

A broker cluster is a comma-separated list, ``mqtt://n1:1883,mqtt://n2:1883``
(``parse_broker_urls``): the nodes share the scheme and the credentials, and a client tries
them in turn, moving to the next after a failed or lost connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

__all__ = ["BrokerUrl", "parse_broker_url", "parse_broker_urls"]

SCHEMES = {"mqtt": (1883, False), "tcp": (1883, False), "mqtts": (8883, True), "ssl": (8883, True)}
_FIX = "write mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS"


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_broker_url(url: str) -> BrokerUrl:
    """Split a broker URL; ``ValueError`` (one line, the URL quoted) when it is not one."""

    def bad(why: str) -> ValueError:
        return ValueError(f"{url!r} is not a broker URL ({why}); {_FIX}")

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise bad("the port must be a number in 0-65535") from None
    if "://" not in url:  # "host:1883" would read as scheme "host"
        raise bad("no mqtt:// in front")
    if parts.scheme not in SCHEMES:
        raise bad(f"scheme {parts.scheme!r}")
    if not parts.hostname:
        raise bad("no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise bad("it takes no path, query or fragment")
    default_port, tls = SCHEMES[parts.scheme]
    return BrokerUrl(
        host=parts.hostname,
        port=port or default_port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def parse_broker_urls(text: str) -> list[BrokerUrl]:
    """One URL, or a comma-separated list of a cluster's nodes; ``ValueError`` as for one,
    or when the nodes differ in TLS or credentials (a client uses the same on every node)."""
    urls = [part.strip() for part in text.split(",")]
    if any(not url for url in urls):
        raise ValueError(f"{text!r}: an empty broker URL in the list; {_FIX}, comma-separated")
    nodes = [parse_broker_url(url) for url in urls]
    first = nodes[0]
    for url, node in zip(urls[1:], nodes[1:], strict=True):
        if (node.tls, node.username, node.password) != (first.tls, first.username, first.password):
            raise ValueError(
                f"{url!r}: every node of a broker list takes the same scheme and credentials "
                f"as the first, {urls[0]!r}"
            )
    return nodes
