"""Liveness-aware assembly: a sample waits for the devices that are alive, not for the dead.

The device registry and the assembler are wired as the service wires them
(``on_change`` -> ``set_alive(is_alive(health))``) and driven by one hand-held clock."""

from __future__ import annotations

from epic.central.assembler import Outcome
from epic.central.devices import DeviceRegistry, is_alive
from epic.central.validate import DeviceReport
from tests.central.service.test_assembler import DEVICES, FakeClock, arrival, make


class Centre:
    def __init__(self, **kw) -> None:
        self.clock = FakeClock()
        self.assembler, self.drops = make(self.clock, **kw)
        self.woken = 0
        self.registry = DeviceRegistry(
            [(d, None) for d in DEVICES],
            offline_after_s=15.0,
            clock=self.clock.monotonic,
            on_change=self._changed,
        )

    def _changed(self, health) -> None:
        if self.assembler.set_alive(health.id, is_alive(health)):
            self.woken += 1  # the service sets the decoder's event here

    def status(self, device: str, online: bool, reason: str | None = None) -> None:
        payload = {"online": online, **({"reason": reason} if reason else {})}
        self.registry.report(DeviceReport("status", device, payload, retained=True))

    def heartbeat(self, device: str) -> None:
        self.registry.report(DeviceReport("heartbeat", device, {"uptime_s": 1}))

    def latent(self, sample: str, device: str) -> Outcome:
        a = arrival(sample, device, self.clock)
        self.registry.latent(a)
        return self.assembler.add(a)


def test_a_device_offline_before_the_sample_opens_is_not_waited_for() -> None:
    c = Centre()
    c.status("dev-4", online=False)  # its Last Will
    outcomes = [c.latent("s1", d) for d in DEVICES[:4]]
    assert outcomes[-1] is Outcome.COMPLETE  # at once, not at the deadline
    [ready] = c.assembler.take_ready(8)
    assert ready.devices_missing == ["dev-4"]
    assert c.drops == []


def test_a_device_that_dies_while_the_sample_waits_releases_it() -> None:
    c = Centre()
    for d in DEVICES[:4]:
        c.latent("s1", d)
    assert c.assembler.ready_count == 0  # dev-4 is alive: wait for it
    c.clock.advance(0.2)
    c.status("dev-4", online=False)
    assert c.woken == 1 and c.assembler.ready_count == 1
    [ready] = c.assembler.take_ready(8)
    assert (ready.sample_id, ready.devices_missing) == ("s1", ["dev-4"])
    assert c.assembler.next_deadline() is None


def test_a_device_back_online_is_waited_for_from_its_next_sample() -> None:
    c = Centre()
    c.status("dev-4", online=False)
    for d in DEVICES[:2]:
        c.latent("s1", d)
    c.status("dev-4", online=True)  # back while s1 waits
    assert c.latent("s1", "dev-2") is Outcome.ADDED
    assert c.latent("s1", "dev-3") is Outcome.COMPLETE  # s1 opened without it
    for d in DEVICES[:4]:
        c.latent("s2", d)
    assert c.assembler.ready_count == 1  # s2 waits for dev-4 again
    assert c.latent("s2", "dev-4") is Outcome.COMPLETE


def test_stale_heartbeats_count_as_gone_and_a_new_one_as_back() -> None:
    c = Centre()
    for d in DEVICES:
        c.status(d, online=True)
        c.heartbeat(d)
    c.clock.advance(10.0)
    for d in DEVICES[:4]:
        c.heartbeat(d)
    for d in DEVICES[:4]:
        c.latent("s1", d)
    assert c.assembler.ready_count == 0
    c.clock.advance(6.0)  # dev-4 silent for 16 s > offline_after_s
    c.registry.tick()
    assert c.assembler.ready_count == 1 and c.assembler.take_ready(8)[0].partial
    assert c.latent("s2", "dev-0") is Outcome.OPENED
    c.heartbeat("dev-4")  # alive again: from the next sample on
    for d in DEVICES[1:4]:
        c.latent("s2", d)
    assert c.assembler.ready_count == 1  # s2 opened while dev-4 was late
    for d in DEVICES[:4]:
        c.latent("s3", d)
    assert c.assembler.ready_count == 1  # s3 waits for dev-4


def test_a_last_will_after_a_late_latent_keeps_the_refined_map() -> None:
    c = Centre()
    for d in DEVICES[:4]:
        c.latent("s1", d)
    c.clock.advance(2.0)  # the deadline: decoded without dev-4
    c.assembler.expire()
    [first] = c.assembler.take_ready(8)
    assert first.devices_missing == ["dev-4"]
    assert c.latent("s1", "dev-4") is Outcome.REFINE  # late, refines s1
    c.status("dev-4", online=False)  # then its Last Will
    [refined] = c.assembler.take_ready(8)
    assert (refined.version, refined.devices_missing) == (2, [])
    assert c.latent("s2", "dev-0") is Outcome.OPENED
    for d in DEVICES[1:4]:
        c.latent("s2", d)
    assert c.assembler.take_ready(8)[0].devices_missing == ["dev-4"]  # not waited for


def test_a_dead_device_s_latent_still_joins_its_sample() -> None:
    c = Centre()
    c.status("dev-4", online=False)
    c.latent("s1", "dev-0")
    assert c.latent("s1", "dev-4") is Outcome.ADDED
    for d in DEVICES[1:4]:
        c.latent("s1", d)
    assert c.assembler.take_ready(8)[0].devices_used == DEVICES


def test_too_few_alive_devices_still_wait_for_the_deadline() -> None:
    c = Centre()  # min_devices 3
    for d in DEVICES[2:]:
        c.status(d, online=False)
    c.latent("s1", "dev-0")
    c.latent("s1", "dev-1")  # every alive device is in, but fewer than min_devices
    assert c.assembler.ready_count == 0
    c.clock.advance(2.0)
    c.assembler.expire()
    assert c.drops == [("s1", "too-few-devices", ["dev-0", "dev-1"])]


def test_a_status_never_heard_counts_as_alive() -> None:
    c = Centre()
    for d in DEVICES[:4]:
        c.latent("s1", d)
    assert c.assembler.ready_count == 0  # dev-4 unknown: the deadline decides
    c.clock.advance(2.0)
    c.assembler.expire()
    assert c.assembler.take_ready(8)[0].devices_missing == ["dev-4"]


def test_a_device_never_heard_from_stops_being_waited_for() -> None:
    c = Centre()
    for d in DEVICES[:4]:
        c.status(d, online=True)
    c.clock.advance(16.0)  # dev-4 silent since the centre started, past offline_after_s
    c.registry.tick()
    assert c.registry.health("dev-4").late
    for d in DEVICES[:4]:
        c.latent("s1", d)
    assert c.assembler.take_ready(8)[0].devices_missing == ["dev-4"]
