"""What the centre says about maps, devices and itself: REST bodies, WebSocket events and
the rows the store keeps. One set of pydantic models, so the OpenAPI schema at /docs is
the contract."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class MapTimings(BaseModel):
    """UTC nanoseconds; ``None`` where a stage did not happen (no acquisition time in a raw
    replay, say). ``acquired_ns`` is the earliest acquisition time among the devices."""

    acquired_ns: int | None = None
    first_arrival_ns: int
    last_arrival_ns: int
    decode_start_ns: int
    decode_end_ns: int
    stored_ns: int | None = None
    decode_ms: float = Field(description="decode_end - decode_start, ms")
    end_to_end_ms: float | None = Field(
        None, description="stored (or decode end) minus acquisition, ms"
    )


class MapSummary(BaseModel):
    sample_id: str
    version: int = Field(description="1 for the first decode; +1 per refinement by late latents")
    partial: bool
    devices_used: list[str]
    devices_missing: list[str]
    model_hash: str
    deployment: str
    timings: MapTimings
    velocity_min: float
    velocity_max: float
    velocity_mean: float
    ssim: float | None = Field(
        None, description="against the ground truth, where the source knows it (the demo)"
    )


class MapDetail(MapSummary):
    velocity: list[list[float]] = Field(description="nz lists of nx velocities, m/s")


def map_summary(detail: MapSummary) -> MapSummary:
    """The map without its velocities (events and lists stay small)."""
    return MapSummary.model_validate(detail.model_dump(exclude={"velocity"}))


class MapList(BaseModel):
    maps: list[MapSummary]


class MapDeleted(BaseModel):
    sample_id: str
    versions: int = Field(description="versions of the sample's map deleted")


class DeviceHealth(BaseModel):
    id: str
    online: bool
    status: Literal["online", "offline", "unknown"] = "unknown"
    late: bool = Field(False, description="no latent or heartbeat for longer than expected")
    last_seen_ns: int | None = None
    bundle_hash: str | None = None
    software: str | None = None
    receivers: list[int] | None = None
    latents_received: int = 0
    rejected: dict[str, int] = Field(default_factory=dict, description="count by reason")
    late_latents: int = 0
    duplicates: int = 0
    arrival_delay_ms_p50: float | None = None
    arrival_delay_ms_p95: float | None = None
    heartbeat: dict | None = Field(None, description="the edge's own last heartbeat figures")


class DeviceList(BaseModel):
    devices: list[DeviceHealth]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    deployment: str
    model: str
    model_hash: str
    broker_connected: bool
    buffer_depth: int
    decode_queue_depth: int
    decode_ms_p50: float | None
    decode_ms_p95: float | None
    maps_stored: int
    uptime_s: float
    rejected: dict[str, int] = Field(default_factory=dict, description="all devices, by reason")
    # Optional detail from the service core (added after the seam; older clients ignore it).
    store_ok: bool | None = Field(None, description="False while the database is failing")
    maps_decoded: int | None = Field(None, description="since start, refinements included")
    samples_dropped: dict[str, int] | None = Field(None, description="never decoded, by reason")
    deadline_ms: float | None = Field(None, description="T, per sample")
    deadline_budget_ms: float | None = Field(None, description="T - t_dec: wait before decode")
    min_devices: int | None = None
    decoder_runtime: str | None = None  # onnxruntime or torch
    decode_batch1_ms_p50: float | None = None
    decode_batch1_ms_p95: float | None = None
    decode_batched_ms_p50: float | None = Field(None, description="batches of 2 or more")
    decode_batched_ms_p95: float | None = None
    reported_ns: int | None = Field(
        None, description="served by epic api: when the centre wrote this, UTC ns"
    )


class MapEvent(BaseModel):
    type: Literal["map"] = "map"
    map: MapSummary


class DeviceEvent(BaseModel):
    type: Literal["device"] = "device"
    device: DeviceHealth


class DeploymentSummary(BaseModel):
    deployment: str
    status: str = Field(
        description="ok or degraded (the centre's own word); starting or standby while it "
        "starts; stale when its centre has not reported for a while (epic api)"
    )
    maps_stored: int = 0
    latest_sample_id: str | None = None
    latest_stored_ns: int | None = None
    devices: int = 0
    devices_online: int = 0
    reported_ns: int | None = Field(
        None, description="when its centre last wrote its health (epic api), UTC ns"
    )


class DeploymentList(BaseModel):
    deployments: list[DeploymentSummary]
