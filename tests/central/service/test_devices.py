"""Device health: status and Last Will, late devices, counts, arrival delay, restarts."""

from __future__ import annotations

import numpy as np

from epic.central.devices import DeviceRegistry
from epic.central.schemas import DeviceHealth
from epic.central.validate import Arrival, DeviceReport


class Tick:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def registry(clock: Tick, events: list[DeviceHealth]) -> DeviceRegistry:
    return DeviceRegistry(
        [("dev-0", [0, 14]), ("dev-1", [14, 28])],
        offline_after_s=15,
        max_extra=1,
        clock=clock,
        on_change=events.append,
    )


def latent(device: str, delay_ms: float) -> Arrival:
    acquired = 1_700_000_000 * 10**9
    return Arrival(
        "latent",
        "s1",
        device,
        np.zeros(1, np.float32),
        acquired,
        0,
        acquired + int(delay_ms * 1e6),
        560,
    )


def test_status_last_will_and_late() -> None:
    clock, events = Tick(), []
    r = registry(clock, events)
    d0, _ = r.snapshot()
    assert (d0.status, d0.online, d0.receivers) == ("unknown", False, [0, 14])
    r.report(DeviceReport("status", "dev-0", {"online": True, "bundle_hash": "h", "software": "1"}))
    assert events[-1].id == "dev-0" and events[-1].online and events[-1].bundle_hash == "h"
    clock.t = 16
    r.tick()
    d0 = r.health("dev-0")
    assert d0.late and d0.online  # silent too long: shown late
    assert r.health("dev-1").late  # never heard from since the centre started: late too
    r.report(DeviceReport("heartbeat", "dev-0", {"outbox_depth": 2}))
    assert not events[-1].late and events[-1].heartbeat == {"outbox_depth": 2}
    # A heartbeat between two full ones says what changed: the figures are merged.
    r.report(DeviceReport("heartbeat", "dev-0", {"time_ns": 5, "dropped": 1}))
    assert events[-1].heartbeat == {"outbox_depth": 2, "time_ns": 5, "dropped": 1}
    r.report(DeviceReport("status", "dev-0", {"online": False, "reason": "lost"}))  # the Will
    assert events[-1].status == "offline" and not events[-1].online
    clock.t = 100
    n = len(events)
    r.tick()
    assert len(events) == n  # an offline device is not also "late"


def test_counts_delay_percentiles_and_unknown_senders() -> None:
    clock, events = Tick(), []
    r = registry(clock, events)
    for ms in range(1, 101):
        r.latent(latent("dev-1", ms))
    r.duplicate("dev-1")
    r.late_latent("dev-1")
    assert r.rejected("dev-1", "crc") == "dev-1"
    assert r.rejected("dev-7", "unknown-device") == "dev-7"  # one extra device is kept
    assert r.rejected("dev-8", "unknown-device") == "?"  # then everything else is "?"
    assert r.rejected("?", "bad-id") == "?"
    d1 = r.health("dev-1")
    assert (d1.latents_received, d1.duplicates, d1.late_latents) == (100, 1, 1)
    assert d1.rejected == {"crc": 1} and d1.online  # no status, but heard from just now
    assert (
        abs(d1.arrival_delay_ms_p50 - 50.5) < 0.01 and abs(d1.arrival_delay_ms_p95 - 95.05) < 0.01
    )
    assert [d.id for d in r.snapshot()] == ["dev-0", "dev-1", "dev-7"]
    assert r.rejected_totals() == {"crc": 1, "unknown-device": 2, "bad-id": 1}


def test_history_survives_a_restart() -> None:
    clock, events = Tick(), []
    r = registry(clock, events)
    r.latent(latent("dev-0", 5))
    r.rejected("dev-0", "crc")
    r.rejected("?", "bad-id")
    saved = r.export()
    again = registry(Tick(), [])
    again.restore(saved)
    d0 = again.health("dev-0")
    assert d0.latents_received == 1 and d0.rejected == {"crc": 1} and d0.last_seen_ns
    assert d0.status == "unknown"  # the broker's retained status will say
    assert again.rejected_totals() == {"crc": 1, "bad-id": 1}
