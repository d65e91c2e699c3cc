"""A decoded map's summary: what the store keeps beside the velocities, what the map topic
and the live feed carry, and what the REST list returns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from epic.central.schemas import MapSummary, MapTimings

if TYPE_CHECKING:  # torch: kept off the centre's start-up path (central.service)
    from epic.central.decoder import DecodedMap

__all__ = ["summary_of"]


def summary_of(decoded: DecodedMap, deployment: str, model_hash: str) -> MapSummary:
    """The summary before storing (``stored_ns`` and end-to-end are the store's to fill)."""
    s, v = decoded.sample, decoded.velocity
    return MapSummary(
        sample_id=s.sample_id,
        version=s.version,
        partial=s.partial,
        devices_used=s.devices_used,
        devices_missing=s.devices_missing,
        model_hash=model_hash,
        deployment=deployment,
        timings=MapTimings(
            acquired_ns=s.acquired_ns,
            first_arrival_ns=s.first_arrival_ns,
            last_arrival_ns=s.last_arrival_ns,
            decode_start_ns=decoded.decode_start_ns,
            decode_end_ns=decoded.decode_end_ns,
            decode_ms=(decoded.decode_end_ns - decoded.decode_start_ns) / 1e6,
        ),
        velocity_min=float(v.min()),
        velocity_max=float(v.max()),
        velocity_mean=float(v.mean()),
        ssim=decoded.ssim,
    )
