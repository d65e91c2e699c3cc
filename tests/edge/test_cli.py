"""``epic edge`` argument errors: one line on stderr, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from epic.cli import main
from epic.edge.connection import BrokerAddressError, BrokerEndpoint
from epic.shared.wire import Backoff


def fail(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err.startswith("epic: error:") and "\n" not in err, err
    return err


def edge_args(bundle: Path, **over: str) -> list[str]:
    args = {
        "--bundle": str(bundle),
        "--device-id": "dev-0",
        "--broker": "mqtt://127.0.0.1:1",
        "--source": "sim:flatfault-a",
        **over,
    }
    return ["edge", *[x for kv in args.items() for x in kv]]


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"--broker": "http://127.0.0.1:1883"}, "mqtt://HOST:PORT"),
        ({"--broker": "mqtt://127.0.0.1:99999"}, "not a broker URL"),
        ({"--device-id": "dev-9"}, "no such device"),
        ({"--source": "flatfault-a"}, "source must be"),
        ({"--mode": "raw", "--dtype": "int8"}, "raw mode sends float32 or float16"),
        ({"--rate": "-1"}, "--rate"),
        ({"--tls-ca": "/no/such/ca.pem"}, "no such CA file"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    bundle: Path,
    capsys: pytest.CaptureFixture[str],
    over: dict[str, str],
    message: str,
    tmp_path: Path,
) -> None:
    args = edge_args(bundle, **{"--outbox": str(tmp_path / "ob.sqlite"), **over})
    assert message in fail(args, capsys)


def test_broker_urls() -> None:
    plain = BrokerEndpoint.parse("mqtt://broker.example")
    assert (plain.host, plain.port, plain.tls) == ("broker.example", 1883, False)
    tls = BrokerEndpoint.parse("mqtts://broker.example", username="dev-0", password="s3cret")
    assert (tls.port, tls.tls, tls.username) == (8883, True, "dev-0")
    assert "s3cret" not in tls.display and "s3cret" not in repr(tls)
    url_creds = BrokerEndpoint.parse("mqtt://dev-1:p%40ss@10.0.0.2:1884")
    assert (url_creds.username, url_creds.password, url_creds.port) == ("dev-1", "p@ss", 1884)
    for bad in ("127.0.0.1:1883", "mqtt://", "mqtt://h:1/path", "ws://h:1"):
        with pytest.raises(BrokerAddressError):
            BrokerEndpoint.parse(bad)


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    backoff = Backoff(0.5, 4.0)
    for bound in (0.5, 1.0, 2.0, 4.0, 4.0):
        assert bound / 2 <= backoff.next_delay() <= bound
    backoff.reset()
    assert backoff.next_delay() <= 0.5
