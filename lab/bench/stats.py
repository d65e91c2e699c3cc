"""The benchmark's arithmetic: per-sample stage latencies, bytes, energy, fidelity.

Definitions (all clocks are this machine's UTC clock, shared by every process):

- ``L_edge``: the envelope's ``encode_us``, as the edge measures it in
  ``edge/producer.py``: read the device's block + normalize + encode (``pack`` follows,
  outside it: a header cannot hold its own packing time). One value per envelope.
- ``L_comm``: arrival at the observer - (``acquired_ns`` + encode time): pack, the outbox
  (SQLite), the publisher, the link, the broker. One value per envelope.
- ``L_central``: the map's decode end - the last arrival among the devices it used, both on
  the centre's clock: the assembler's wait (for the last device, or the deadline) + the
  decode. One value per map.
- ``L_total``: the map stored - the acquisition time (the centre's ``end_to_end``).
- Bytes per sample: every byte the edges' link proxies carried uplink (envelopes, MQTT
  framing, connect, status, heartbeats, over the whole run including the wait for the
  first shot) over the samples. Beside it, the data alone: each envelope's MQTT PUBLISH
  packet (``publish_bytes``), and the envelopes alone.
- Energy per device per sample: ``epic.lab.bench.energy.per_sample_energy`` for that device's
  uplink bytes per sample, sent at the profile's effective uplink rate
  (``transmit_s = bytes * 8 / rate``), one sample every ``1 / rate_hz`` seconds; the mean
  over the devices. Headline: without the RRC tail (the radio's sending only).

Only each sample's first decode counts (refinements by late latents come after the user
saw the map), and samples that were due before every edge was up are left out of the
latencies (``RunResult.warmup``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from epic.lab.bench.energy import per_sample_energy
from epic.lab.bench.observer import EnvelopeRecord, MapRecord

__all__ = [
    "ENERGY_FALLBACK_PROFILE",
    "energy_per_device",
    "model_figures",
    "percentile",
    "publish_bytes",
    "robustness_curve",
    "stage_latencies",
    "throughput",
    "write_json",
]

# The energy model is LTE's: on a link with no rate cap, the radio is assumed to send at
# the 4g profile's effective rate.
ENERGY_FALLBACK_PROFILE = "4g"


def percentile(values: Iterable[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default); ``None`` for no values."""
    xs = sorted(values)
    if not xs:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0-100")
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def publish_bytes(topic_bytes: int, payload_bytes: int, qos: int = 1) -> int:
    """An MQTT 3.1.1 PUBLISH packet's size: fixed header byte, remaining length (a 1-4 byte
    varint), topic (2-byte length + name), packet id (QoS > 0), payload."""
    remaining = 2 + topic_bytes + (2 if qos > 0 else 0) + payload_bytes
    varint = 1 + (remaining >= 128) + (remaining >= 16_384) + (remaining >= 2_097_152)
    return 1 + varint + remaining


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class StageLatencies:
    """Milliseconds: per envelope (edge, comm) and per map (central, total)."""

    edge_ms: list[float]
    comm_ms: list[float]
    central_ms: list[float]
    total_ms: list[float]
    decode_ms: list[float]
    # The critical path of each map: acquisition -> the centre's last arrival, and
    # decode end -> stored (SSIM against the truth, SQLite); with ``central_ms`` they sum
    # to ``total_ms``.
    to_last_arrival_ms: list[float]
    store_ms: list[float]


def stage_latencies(
    envelopes: Iterable[EnvelopeRecord], maps: Iterable[MapRecord], samples: set[str]
) -> StageLatencies:
    """The stage latencies of ``samples``' envelopes and first maps (see the module doc)."""
    edge, comm = [], []
    for e in envelopes:
        if e.sample_id in samples:
            edge.append(e.encode_us / 1e3)
            comm.append((e.arrival_ns - e.acquired_ns - e.encode_us * 1_000) / 1e6)
    central, total, decode, to_last, store = [], [], [], [], []
    for m in maps:
        if m.sample_id not in samples:
            continue
        central.append((m.decode_end_ns - m.last_arrival_ns) / 1e6)
        decode.append((m.decode_end_ns - m.decode_start_ns) / 1e6)
        end = m.stored_ns if m.stored_ns is not None else m.decode_end_ns
        store.append((end - m.decode_end_ns) / 1e6)
        if m.acquired_ns is not None:
            total.append((end - m.acquired_ns) / 1e6)
            to_last.append((m.last_arrival_ns - m.acquired_ns) / 1e6)
    return StageLatencies(edge, comm, central, total, decode, to_last, store)


def energy_per_device(bytes_per_sample: float, rate_bps: float, interval_s: float) -> dict:
    """One device's uplink energy per sample (mJ), without and with the RRC tail."""
    if not rate_bps > 0:
        raise ValueError(f"uplink rate must be > 0 bit/s: {rate_bps}")
    transmit_s = bytes_per_sample * 8 / rate_bps
    e = per_sample_energy(bytes_per_sample, transmit_s, interval_s)
    return {"transmit_s": transmit_s, "transmit_mj": e.transmit_mj, "with_tail_mj": e.total_mj}


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def model_figures(
    *,
    envelopes: Sequence[EnvelopeRecord],
    first_maps: dict[str, MapRecord],
    expected: Sequence[str],
    warmup: set[str],
    link_bytes_up: dict[str, int],
    energy_rate_bps: float,
    rate_hz: float,
) -> dict:
    """One model's row: the issue's keys first, then the extra figures behind them."""
    timed = set(expected) - warmup
    lat = stage_latencies(envelopes, [first_maps[s] for s in first_maps], timed)
    samples = len(expected)
    wanted = set(expected)
    per_device = {d: b / samples for d, b in link_bytes_up.items()}
    energies = [energy_per_device(b, energy_rate_bps, 1 / rate_hz) for b in per_device.values()]
    mine = [e for e in envelopes if e.sample_id in wanted]
    payload = sum(e.wire_bytes for e in mine)
    data = sum(publish_bytes(e.topic_bytes, e.wire_bytes) for e in mine)
    ssim = [m.ssim for m in first_maps.values() if m.ssim is not None]
    maps = len(first_maps)
    figures = {
        "l_edge_ms_p50": percentile(lat.edge_ms, 50),
        "l_comm_ms_p50": percentile(lat.comm_ms, 50),
        "l_central_ms_p50": percentile(lat.central_ms, 50),
        "l_total_ms_p50": percentile(lat.total_ms, 50),
        "l_total_ms_p95": percentile(lat.total_ms, 95),
        "bytes_per_sample": sum(per_device.values()) if per_device else None,
        "energy_mj_per_sample": _mean([e["transmit_mj"] for e in energies]),
        "ssim": _mean(ssim),
        "maps": maps,
        "lost": samples - maps,
        # -- extras --------------------------------------------------------------------------
        "l_edge_ms_p95": percentile(lat.edge_ms, 95),
        "l_comm_ms_p95": percentile(lat.comm_ms, 95),
        "l_central_ms_p95": percentile(lat.central_ms, 95),
        "decode_ms_p50": percentile(lat.decode_ms, 50),
        "to_last_arrival_ms_p50": percentile(lat.to_last_arrival_ms, 50),
        "store_ms_p50": percentile(lat.store_ms, 50),
        "energy_mj_per_sample_with_tail": _mean([e["with_tail_mj"] for e in energies]),
        "transmit_s_per_sample": _mean([e["transmit_s"] for e in energies]),
        "payload_bytes_per_sample": payload / samples,
        "data_bytes_per_sample": data / samples,
        "bytes_per_sample_per_device": _mean(list(per_device.values())),
        "partial": sum(1 for m in first_maps.values() if m.partial),
        "envelopes": len(mine),
        "timed_samples": len(timed),
    }
    return {k: _round(v) if isinstance(v, float) else v for k, v in figures.items()}


def robustness_curve(first_maps: Iterable[MapRecord], n_devices: int) -> list[dict]:
    """Mean SSIM (and L_total p50) per number of devices cut, from each map's devices."""
    groups: dict[int, list[MapRecord]] = {}
    for m in first_maps:
        groups.setdefault(n_devices - len(m.devices_used), []).append(m)
    out = []
    for cut in range(n_devices):
        ms = groups.get(cut, [])
        ssim = [m.ssim for m in ms if m.ssim is not None]
        total = [
            ((m.stored_ns or m.decode_end_ns) - m.acquired_ns) / 1e6
            for m in ms
            if m.acquired_ns is not None
        ]
        out.append(
            {
                "devices_cut": cut,
                "maps": len(ms),
                "ssim": _round(_mean(ssim), 4),
                "l_total_ms_p50": _round(percentile(total, 50), 1),
            }
        )
    return out


def throughput(first_maps: Iterable[MapRecord]) -> dict:
    """Maps per second the centre stored: (n - 1) over the span of their store times."""
    stored = sorted((m.stored_ns or m.decode_end_ns) for m in first_maps)
    span_s = (stored[-1] - stored[0]) / 1e9 if len(stored) > 1 else 0.0
    return {
        "maps": len(stored),
        "span_s": round(span_s, 3),
        "maps_per_s": round((len(stored) - 1) / span_s, 2) if span_s > 0 else None,
    }


def write_json(path: Path, figures: object) -> None:
    """A benchmark's figures as indented JSON, making the folder, and say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {path}")
