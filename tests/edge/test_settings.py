"""The edge's settings: ``EdgeConfig`` reads ``EPIC_EDGE_*``, ``epic edge`` passes only the
options given (they win over the environment), and its help shows the model's defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from epic.cli import main
from epic.edge import daemon
from epic.edge.config import EdgeConfig

REQUIRED = {"bundle": Path("b"), "device_id": "dev-0", "source": "sim:flatfault-a"}


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EPIC_EDGE_BROKER", "mqtts://broker.example:8884")
    monkeypatch.setenv("EPIC_EDGE_USERNAME", "dev-0")
    monkeypatch.setenv("EPIC_EDGE_PASSWORD", "s3cret")
    monkeypatch.setenv("EPIC_EDGE_HEARTBEAT_S", "2.5")
    monkeypatch.setenv("EPIC_EDGE_WINDOW", "4")
    c = EdgeConfig(**REQUIRED)
    b = c.broker
    assert (b.host, b.port, b.tls, b.username, b.password) == (
        "broker.example",
        8884,
        True,
        "dev-0",
        "s3cret",
    )
    assert "s3cret" not in repr(c)
    assert (c.heartbeat_s, c.window, c.stats_s) == (2.5, 4, 60.0)  # the last: the default
    assert EdgeConfig(**REQUIRED, window=2).window == 2  # an argument wins


def test_the_password_s_earlier_variable_is_still_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EPIC_MQTT_PASSWORD", "old")
    c = EdgeConfig(**REQUIRED, broker="mqtt://h")
    assert c.broker.password == "old"
    monkeypatch.setenv("EPIC_EDGE_PASSWORD", "new")
    assert EdgeConfig(**REQUIRED, broker="mqtt://h").broker.password == "new"


@pytest.mark.parametrize(
    ("over", "says"),
    [
        ({"rate": -1}, "-1.0 must be >= 0"),
        ({"keepalive_s": 0}, "0 must be >= 1 s"),
        ({"heartbeat_s": 10}, "must be >= --heartbeat-s (10.0)"),
        ({"backoff_min_s": 2, "backoff_max_s": 1}, "needs 0 < min <= max"),
        ({"mode": "raw", "dtype": "int8"}, "raw mode sends float32 or float16"),
        ({"compress": "lz4"}, "compression must be none or zstd"),
        ({"broker": "http://x:1"}, "is not a broker URL"),
        ({"nonsense": 1}, "Extra inputs"),
    ],
)
def test_bad_values_are_refused(over: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says.replace("(", r"\(").replace(")", r"\)")):
        EdgeConfig(**{**REQUIRED, "broker": "mqtt://h", "stats_s": 5, **over})


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, EdgeConfig]:
    """``epic edge`` up to the daemon: the configuration it would run."""
    got: dict[str, EdgeConfig] = {}

    def run_edge(config: EdgeConfig) -> int:
        got["config"] = config
        return 0

    monkeypatch.setattr(daemon, "run_edge", run_edge)
    return got


def edge_cli(*args: str) -> None:
    main(["edge", "--bundle", "b", "--device-id", "dev-0", "--source", "sim:x", *args])


def test_an_option_given_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, seen: dict[str, EdgeConfig]
) -> None:
    monkeypatch.setenv("EPIC_EDGE_BROKER", "mqtt://from-env:1884")
    monkeypatch.setenv("EPIC_EDGE_RATE", "3")
    monkeypatch.setenv("EPIC_EDGE_HEARTBEAT_S", "2")
    edge_cli("--rate", "0.5", "--keepalive", "12")
    c = seen["config"]
    assert (c.rate, c.keepalive_s) == (0.5, 12)  # given
    assert (c.heartbeat_s, c.broker.host) == (2.0, "from-env")  # not given: the environment
    assert c.outbox_mb == EdgeConfig.model_fields["outbox_mb"].default  # nowhere: the model's


def test_a_refusal_names_the_option_or_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EPIC_EDGE_WINDOW", "0")  # a setting with no option
    with pytest.raises(SystemExit) as ended:
        main(["edge", "--bundle", "b", "--device-id", "dev-0", "--source", "sim:x"])
    err = capsys.readouterr().err.strip()
    assert ended.value.code == 2 and "\n" not in err
    assert "--broker is required (or EPIC_EDGE_BROKER)" in err
    assert "EPIC_EDGE_WINDOW: 0 must be >= 1" in err


@pytest.mark.parametrize("command", ["edge", "central"])
def test_the_help_shows_the_settings_defaults(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each option's default in --help is its settings field's, read from the model."""
    from epic.central.settings import CentralSettings

    model = EdgeConfig if command == "edge" else CentralSettings
    main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # unwrapped
    checked = 0
    for name, field in model.model_fields.items():
        option = "--" + {"keepalive_s": "keepalive"}.get(name, name).replace("_", "-")
        default = None if field.is_required() else field.get_default()
        start = text.find(f" {option} <")
        if start < 0 or default is None:
            continue  # no option, or none shown (the help says what happens)
        following = re.search(r" --[a-z]", text[start + len(option) + 1 :])
        block = text[start : start + len(option) + 1 + (following.start() if following else 0)]
        assert f"[default: {default}]" in block, block
        checked += 1
    assert checked >= 10
