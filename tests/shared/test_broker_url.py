"""One reading of a broker URL for the edge and the centre: the same URLs are accepted, and a
bad one gets the same words from ``epic edge`` and ``epic central``."""

from __future__ import annotations

from pathlib import Path

import pytest

from epic.central.settings import broker_address
from epic.cli import main
from epic.edge.connection import BrokerAddressError, BrokerEndpoint
from epic.shared.wire import parse_broker_url

GOOD = [
    ("mqtt://10.0.0.5", ("10.0.0.5", 1883, False)),
    ("mqtts://broker.example", ("broker.example", 8883, True)),
    ("mqtt://h:1884/", ("h", 1884, False)),
    ("tcp://h", ("h", 1883, False)),
    ("ssl://h:9999", ("h", 9999, True)),
    ("mqtt://[::1]:1883", ("::1", 1883, False)),
]
BAD = [
    ("http://x:1", "scheme 'http'"),
    ("10.0.0.5:1883", "no mqtt:// in front"),
    ("localhost:1883", "no mqtt:// in front"),
    ("broker", "no mqtt:// in front"),
    ("ws://h:1", "scheme 'ws'"),
    ("mqtt://", "no host"),
    ("mqtt://h:99999", "port must be a number"),
    ("mqtt://h:port", "port must be a number"),
    ("mqtt://h:1/path", "no path"),
    ("mqtt://h:1?x=1", "no path"),
]


@pytest.mark.parametrize(("url", "expected"), GOOD)
def test_edge_and_centre_read_a_url_alike(url: str, expected: tuple) -> None:
    edge = BrokerEndpoint.parse(url)
    centre = broker_address(url)
    assert (edge.host, edge.port, edge.tls) == expected
    assert (centre.host, centre.port, centre.tls) == expected


def test_credentials_in_the_url_reach_both() -> None:
    assert parse_broker_url("mqtt://dev-1:p%40ss@h").password == "p@ss"
    centre = broker_address("mqtt://central:pw@h")
    assert (centre.username, centre.password) == ("central", "pw")
    assert "pw" not in repr(centre) and "pw" not in repr(parse_broker_url("mqtt://u:pw@h"))


@pytest.mark.parametrize(("url", "why"), BAD)
def test_a_bad_url_says_why_and_what_to_write(url: str, why: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_broker_url(url)
    text = str(refused.value)
    assert text.startswith(f"{url!r} is not a broker URL (") and why in text
    assert text.endswith("write mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS")
    with pytest.raises(BrokerAddressError, match="is not a broker URL"):
        BrokerEndpoint.parse(url)


def test_edge_and_centre_print_the_same_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path  # the URL is checked first: no bundle is read
    lines = []
    for argv in (
        ["edge", "--bundle", str(bundle), "--device-id", "dev-0", "--source", "sim:flatvel-a"],
        ["central", "--bundle", str(bundle), "--port", "0", "--db", str(tmp_path / "c.sqlite")],
    ):
        with pytest.raises(SystemExit) as ended:
            main([*argv, "--broker", "http://x:1"])
        assert ended.value.code == 2
        lines.append(capsys.readouterr().err.strip())
    expected = (
        "epic: error: --broker: 'http://x:1' is not a broker URL (scheme 'http'); "
        "write mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS"
    )
    assert lines[0] == expected
    assert lines[1] == expected + " (see `epic central --help`)"


def test_a_clusters_nodes_are_read_alike_and_tried_in_turn() -> None:
    from epic.central.settings import broker_addresses

    nodes = "mqtt://n1:1883, mqtt://n2,mqtt://n3:1999"
    edge = BrokerEndpoint.parse(nodes, username="dev-0")
    assert edge.nodes == [("n1", 1883), ("n2", 1883), ("n3", 1999)]
    assert [edge.node(k).display for k in range(4)] == [
        "mqtt://dev-0@n1:1883",
        "mqtt://dev-0@n2:1883",
        "mqtt://dev-0@n3:1999",
        "mqtt://dev-0@n1:1883",  # and round again
    ]
    assert [(a.host, a.port) for a in broker_addresses(nodes)] == edge.nodes
    assert broker_address(nodes).host == "n1"


@pytest.mark.parametrize(
    ("nodes", "fragment"),
    [
        ("mqtt://n1,mqtts://n2", "same scheme and credentials as the first"),
        ("mqtt://a:b@n1,mqtt://n2", "same scheme and credentials as the first"),
        ("mqtt://n1,,mqtt://n2", "an empty broker URL in the list"),
        ("mqtt://n1,n2:1883", "no mqtt:// in front"),
    ],
)
def test_a_bad_node_list_is_one_clear_error(nodes: str, fragment: str) -> None:
    with pytest.raises(BrokerAddressError, match=fragment):
        BrokerEndpoint.parse(nodes)
    with pytest.raises(ValueError, match=fragment):
        broker_address(nodes)
