"""Prometheus instruments of one centre, in a registry of its own (not the process-global
one), so two services in one process, as in the tests, never share or clash."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

# Decode is tens of ms on a laptop CPU, seconds on a Pi; end to end adds the network.
_DECODE_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_E2E_BUCKETS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.messages = Counter(
            "epic_central_messages", "MQTT messages received", ["kind"], registry=r
        )
        self.rejected = Counter(
            "epic_central_rejected", "Messages rejected", ["device", "reason"], registry=r
        )
        self.duplicates = Counter(
            "epic_central_duplicates", "Duplicate latents ignored", ["device"], registry=r
        )
        self.late = Counter(
            "epic_central_late", "Latents for samples already decoded", ["device"], registry=r
        )
        self.dropped = Counter(
            "epic_central_samples_dropped", "Samples never decoded", ["reason"], registry=r
        )
        self.maps = Counter("epic_central_maps", "Maps decoded", ["partial", "refined"], registry=r)
        self.decode = Histogram(
            "epic_central_decode_seconds",
            "Decode time of one batch",
            ["batch"],
            buckets=_DECODE_BUCKETS,
            registry=r,
        )
        self.end_to_end = Histogram(
            "epic_central_end_to_end_seconds",
            "Map stored minus acquisition",
            buckets=_E2E_BUCKETS,
            registry=r,
        )
        self.buffer_depth = Gauge(
            "epic_central_buffer_depth", "Samples waiting in the assembler", registry=r
        )
        self.broker_connected = Gauge(
            "epic_central_broker_connected", "1 while connected to the broker", registry=r
        )
        self.subscribers_dropped = Counter(
            "epic_central_subscribers_dropped",
            "Live clients dropped for falling behind",
            registry=r,
        )
        self.maps_lost = Counter(
            "epic_central_maps_lost",
            "Maps dropped from memory while the store failed",
            registry=r,
        )

    def batch_label(self, size: int) -> str:
        """Bounded label values: 1, 2-4, 5-8, 9-16, >16."""
        for bound, label in ((1, "1"), (4, "2-4"), (8, "5-8"), (16, "9-16")):
            if size <= bound:
                return label
        return ">16"
