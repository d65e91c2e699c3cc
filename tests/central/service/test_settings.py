"""Settings: defaults, the environment, and what is refused; the rate-limited log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from epic.central.ratelimit import RateLimitedLog
from epic.central.settings import CentralSettings, broker_address, default_db_path


def test_defaults_and_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EPIC_CENTRAL_PASSWORD", "s3cret")
    monkeypatch.setenv("EPIC_CENTRAL_DEADLINE_MS", "750")
    s = CentralSettings(bundle=tmp_path, broker="mqtts://broker.example:8884")
    assert s.password.get_secret_value() == "s3cret" and "s3cret" not in repr(s)
    assert s.deadline_ms == 750 and s.clock == "arrival" and (s.host, s.port) == ("127.0.0.1", 8000)
    assert (s.retention, s.max_open_samples, s.decode_batch_max) == (10_000, 256, 16)
    a = s.address
    assert (a.host, a.port, a.tls) == ("broker.example", 8884, True)
    assert [s.min_devices_for(n) for n in (1, 4, 5, 70)] == [1, 2, 3, 35]  # a majority
    assert CentralSettings(bundle=tmp_path, deadline_ms=1).deadline_ms == 1  # argument wins
    with pytest.raises(ValueError, match="more than the deployment's 5"):
        CentralSettings(bundle=tmp_path, min_devices=6).min_devices_for(5)


def test_default_database_lives_where_it_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert default_db_path("demo", cwd=tmp_path) == tmp_path / "epic-central-demo.sqlite"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr("os.access", lambda path, mode: False)  # a read-only working folder
    state = tmp_path / "home" / ".local" / "state" / "epic"
    assert default_db_path("demo", cwd=tmp_path) == state / "epic-central-demo.sqlite"
    assert state.is_dir()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("broker", "http://x:1883"),
        ("broker", "mqtt://:1883"),
        ("broker", "mqtt://x:99999"),
        ("clock", "gps"),
        ("deadline_ms", 0),
        ("port", -1),
        ("decode_batch_max", 0),
        ("tls_ca", "/no/such/ca.pem"),
        ("nonsense", 1),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        CentralSettings(bundle=tmp_path, **{field: value})


def test_broker_url_default_ports() -> None:
    assert broker_address("mqtt://h").port == 1883 and broker_address("mqtts://h").port == 8883


def test_rate_limited_log_says_once_a_minute_per_key(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("t"), 60.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        assert limited.warning("crc", "bad crc from %s", "dev-0")
        for _ in range(5):
            assert not limited.warning("crc", "bad crc from %s", "dev-0")
        assert limited.warning("oversize", "too big")  # another reason has its own minute
        now[0] = 61.0
        assert limited.warning("crc", "bad crc from %s", "dev-1")
    assert [r.getMessage() for r in caplog.records] == [
        "bad crc from dev-0",
        "too big",
        "bad crc from dev-1 (5 more like it since the last such line)",
    ]
