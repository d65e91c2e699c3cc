"""A deployment bundle's ``manifest.json``: what it deploys and which file each machine
loads (``epic.shared.bundle`` writes bundles and loads their weights).

Kept apart from ``epic.shared.bundle`` and free of PyTorch, so that an edge running its encoder
with onnxruntime reads its manifest without importing torch (a few hundred megabytes of
memory on a field device that never uses it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from epic import __version__
from epic.shared.errors import DataError

__all__ = ["BUNDLE_FORMAT", "DeviceEntry", "Manifest", "load_manifest"]

BUNDLE_FORMAT = 1


@dataclass(frozen=True)
class DeviceEntry:
    id: str
    index: int
    receivers: tuple[int, int]  # [first, last_exclusive]
    latent_shape: tuple[int, ...]
    edge_file: str
    edge_bytes: int
    onnx_file: str | None = None
    # The ONNX encoder takes raw waveforms and normalizes them itself (bundles written since
    # 2026-12-05: onnxruntime's log1p is three times numpy's); older ones take them normalized.
    onnx_normalizes: bool = False


@dataclass(frozen=True)
class Manifest:
    deployment: str
    model: str
    preset: str
    model_hash: str
    config: dict[str, Any]
    devices: tuple[DeviceEntry, ...]
    central_file: str
    central_bytes: int
    total_bytes: int
    software: str = __version__
    format: int = BUNDLE_FORMAT
    provenance: dict[str, Any] = field(default_factory=dict)
    # The centre's half (fusion and decoder) for onnxruntime, and the file's SHA-256: the
    # centre uses it only when it is the file this manifest was written with.
    central_onnx: str | None = None
    central_onnx_sha256: str | None = None

    def device(self, device_id: str) -> DeviceEntry:
        for d in self.devices:
            if d.id == device_id:
                return d
        known = ", ".join(d.id for d in self.devices)
        raise DataError(device_id, f"no such device in deployment {self.deployment!r} ({known})")

    @property
    def device_ids(self) -> list[str]:
        return [d.id for d in self.devices]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def load_manifest(bundle: Path | str) -> Manifest:
    bundle = Path(bundle)
    # Named for what the user gave (the folder), not for the file we looked for inside it.
    if not bundle.exists():
        raise DataError(bundle, "no such folder (make a bundle with `epic deploy`)")
    if not bundle.is_dir():
        raise DataError(bundle, "not a folder; give the bundle folder `epic deploy` wrote")
    path = bundle / "manifest.json"
    if not path.is_file():
        raise DataError(bundle, "no manifest.json: not a deployment bundle (see `epic deploy`)")
    try:
        raw = json.loads(path.read_text())
        if raw.get("format") != BUNDLE_FORMAT:
            raise DataError(path, f"bundle format {raw.get('format')}, expected {BUNDLE_FORMAT}")
        devices = tuple(
            DeviceEntry(
                **{
                    **d,
                    "receivers": tuple(d["receivers"]),
                    "latent_shape": tuple(d["latent_shape"]),
                }
            )
            for d in raw.pop("devices")
        )
        return Manifest(**raw, devices=devices)
    except DataError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DataError(path, f"malformed manifest ({type(exc).__name__}: {exc})") from exc
