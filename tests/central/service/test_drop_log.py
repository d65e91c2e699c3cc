"""A sample dropped for too few devices is a warning when devices were lost, and an INFO line
when the ones missing were stopped on purpose (the end of a run): every demo's shutdown used
to warn about the samples its own stop cut off. Both are counted alike."""

from __future__ import annotations

import logging

import pytest

from epic.central.assembler import Assembler
from epic.central.devices import DeviceRegistry
from epic.central.pipeline import Pipeline
from epic.central.prometheus import Metrics
from epic.central.validate import DeviceReport

IDS = ["dev-0", "dev-1", "dev-2", "dev-3"]


def pipeline() -> Pipeline:
    registry = DeviceRegistry([(d, None) for d in IDS])
    assembler = Assembler(IDS, 3, 1000.0)
    return Pipeline(
        assembler,
        None,
        None,
        registry,
        None,
        Metrics(),  # type: ignore[arg-type]
        deployment="d",
        model_hash="h",
        batch_max=4,
    )


def say(p: Pipeline, device: str, online: bool, reason: str | None = None) -> None:
    payload: dict = {"online": online} | ({"reason": reason} if reason else {})
    p.registry.report(DeviceReport("status", device, payload))


@pytest.mark.parametrize(
    ("goodbyes", "level"),
    [
        ({"dev-2": "shutdown", "dev-3": "shutdown"}, logging.INFO),
        ({"dev-2": "shutdown", "dev-3": "lost"}, logging.WARNING),  # one died: warn
        ({"dev-2": "shutdown"}, logging.WARNING),  # dev-3 silent, not stopped
        ({}, logging.WARNING),
    ],
)
def test_a_drop_warns_unless_the_missing_devices_were_stopped(
    goodbyes: dict[str, str], level: int, caplog: pytest.LogCaptureFixture
) -> None:
    p = pipeline()
    for device in IDS:
        say(p, device, True)
    for device, reason in goodbyes.items():
        say(p, device, False, reason)
    with caplog.at_level(logging.INFO, logger="epic.central.pipeline"):
        p.on_drop("s-1", "too-few-devices", ["dev-0", "dev-1"])
    (record,) = caplog.records
    assert record.levelno == level, record.getMessage()
    assert "s-1" in record.getMessage()
    assert p.dropped == {"too-few-devices": 1}


def test_a_device_back_online_after_a_stop_is_no_longer_stopped() -> None:
    p = pipeline()
    say(p, "dev-3", False, "shutdown")
    assert p.registry.stopped("dev-3")
    say(p, "dev-3", True)
    assert not p.registry.stopped("dev-3")
    say(p, "dev-3", False, "lost")
    assert not p.registry.stopped("dev-3")
