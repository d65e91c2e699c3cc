"""Deployment bundles (EPIC-Depl): one checkpoint split into what each machine runs.

``write_bundle`` turns a checkpoint into::

    DIR/manifest.json          deployment, model name/preset/hash, devices and their
                               receivers, latent shapes, geometry, normalization, file sizes
    DIR/edge/<device_id>.pt    that device's encoder only
    DIR/edge/<device_id>.onnx  the same encoder for onnxruntime (with ``onnx=True``)
    DIR/central.pt             everything but the encoders: fusion and decoder
    DIR/central.onnx           the same for onnxruntime (twice as fast on 2 cores; the
                               centre's default where onnxruntime is installed)

An edge loads only its own file; the centre refuses envelopes whose model hash is not the
manifest's. The hash is taken over the weights and the configuration, so two deployments
of one checkpoint agree and a retrained model differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from epic.shared import torchfile
from epic.shared.errors import DataError, OptionError
from epic.shared.manifest import BUNDLE_FORMAT, DeviceEntry, Manifest, load_manifest
from epic.shared.models.base import FWIModel
from epic.shared.models.checkpoint import load_checkpoint
from epic.shared.models.registry import build_from_config
from epic.shared.partition import device_ids as default_device_ids
from epic.shared.wire import ID_PATTERN, ID_SPEC

__all__ = [
    "BUNDLE_FORMAT",
    "CentralOnnx",
    "DeviceEntry",
    "Manifest",
    "load_central_model",
    "load_central_onnx",
    "load_edge_encoder",
    "load_manifest",
    "model_hash",
    "write_bundle",
]

_ENCODER_KEY = re.compile(r"^encoders\.(\d+)\.")


def model_hash(model: FWIModel) -> str:
    """16 hex digits of SHA-256 over the configuration and every tensor, in name order."""
    h = hashlib.sha256(json.dumps(model.config(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()[:16]


def _save_atomic(obj: Any, path: Path) -> int:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path.stat().st_size


def _encoder_state(model: FWIModel, i: int) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in model.encoder(i).state_dict().items()}


def write_bundle(
    checkpoint: Path | str,
    out: Path | str,
    deployment: str,
    n_devices: int | None = None,
    device_ids: list[str] | None = None,
    onnx: bool = False,
    central_onnx: bool = True,
) -> Manifest:
    """Split ``checkpoint`` into a deployment bundle in ``out``; returns the manifest.
    ``onnx``: also each edge encoder as ONNX; ``central_onnx``: the centre's half too."""
    if not ID_PATTERN.fullmatch(deployment):
        raise OptionError(deployment, f"deployment name must be {ID_SPEC}")
    model, meta = load_checkpoint(checkpoint)
    if n_devices is not None and n_devices != model.n_devices:
        raise OptionError(
            checkpoint,
            f"was trained for {model.n_devices} devices, not {n_devices} "
            "(a model's device partition is fixed when it is trained)",
        )
    ids = device_ids or default_device_ids(model.n_devices)
    if len(ids) != model.n_devices:
        raise OptionError(checkpoint, f"{len(ids)} device ids for {model.n_devices} devices")
    bad = [i for i in ids if not ID_PATTERN.fullmatch(i)]
    if bad or len(set(ids)) != len(ids):
        raise OptionError(",".join(ids), f"device ids must be unique and {ID_SPEC}")

    out = Path(out)
    (out / "edge").mkdir(parents=True, exist_ok=True)
    digest = model_hash(model)
    config = model.config()
    devices = []
    for i, (dev, block) in enumerate(zip(ids, model.blocks, strict=True)):
        edge_file = f"edge/{dev}.pt"
        size = _save_atomic(
            {
                "format": "epic-edge",
                "version": BUNDLE_FORMAT,
                "config": config,
                "device_index": i,
                "device_id": dev,
                "model_hash": digest,
                "state_dict": _encoder_state(model, i),
            },
            out / edge_file,
        )
        onnx_file = None
        if onnx:
            onnx_file = f"edge/{dev}.onnx"
            export_onnx(model, i, out / onnx_file)
        devices.append(
            DeviceEntry(
                id=dev,
                index=i,
                receivers=(block.start, block.stop),
                latent_shape=tuple(model.latent_shape(i)),
                edge_file=edge_file,
                edge_bytes=size,
                onnx_file=onnx_file,
                onnx_normalizes=onnx_file is not None,
            )
        )
    central_state = {
        k: v.detach().cpu() for k, v in model.state_dict().items() if not _ENCODER_KEY.match(k)
    }
    central_bytes = _save_atomic(
        {
            "format": "epic-central",
            "version": BUNDLE_FORMAT,
            "config": config,
            "model_hash": digest,
            "state_dict": central_state,
        },
        out / "central.pt",
    )
    onnx_name = onnx_sha = None
    if central_onnx:
        onnx_name = "central.onnx"
        onnx_sha = export_central_onnx(model, out / onnx_name)
    manifest = Manifest(
        deployment=deployment,
        model=model.name,
        preset=model.preset,
        model_hash=digest,
        config=config,
        devices=tuple(devices),
        central_file="central.pt",
        central_bytes=central_bytes,
        total_bytes=central_bytes + sum(d.edge_bytes for d in devices),
        provenance={"checkpoint": str(checkpoint), "meta": _plain(meta)},
        central_onnx=onnx_name,
        central_onnx_sha256=onnx_sha,
    )
    tmp = out / ".manifest.json.tmp"
    tmp.write_text(manifest.to_json())
    os.replace(tmp, out / "manifest.json")
    return manifest


def _plain(value: Any) -> Any:
    """Checkpoint meta as JSON (anything exotic becomes its string)."""
    return json.loads(json.dumps(value, default=str))


def _load_part(path: Path, fmt: str, manifest: Manifest) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(path, "missing from the bundle (deploy it again with `epic deploy`)")
    part = torchfile.load(path, "bundle file")
    if not isinstance(part, dict) or part.get("format") != fmt:
        raise DataError(path, f"not an {fmt} file")
    if part.get("model_hash") != manifest.model_hash:
        raise DataError(path, f"model hash {part.get('model_hash')} != manifest's")
    return part


def load_edge_encoder(bundle: Path | str, device_id: str) -> tuple[Manifest, nn.Module]:
    """Device ``device_id``'s encoder (eval mode), built without the rest of the model."""
    manifest = load_manifest(bundle)
    entry = manifest.device(device_id)
    part = _load_part(Path(bundle) / entry.edge_file, "epic-edge", manifest)
    # Build the whole model on the meta device (no memory, no init cost), then materialize
    # only this device's encoder: the edge never holds the decoder.
    with torch.device("meta"):
        skeleton = build_from_config(part["config"])
    encoder = skeleton.encoder(part["device_index"]).to_empty(device="cpu")
    try:
        encoder.load_state_dict(part["state_dict"])
    except RuntimeError as exc:
        raise DataError(entry.edge_file, f"weights do not fit the encoder ({exc})") from exc
    for module in encoder.modules():  # buffers no state dict carries (a fixed filter)
        reset_buffers = getattr(module, "reset_buffers", None)
        if reset_buffers is not None:
            reset_buffers()
    return manifest, encoder.eval()


def load_central_model(bundle: Path | str) -> tuple[Manifest, FWIModel]:
    """The model for the centre, with the central weights loaded (eval mode).

    Encoders are left as built: the centre runs them only for raw uploads, and only where
    they hold no weights (InversionNet's identity encoders).
    """
    manifest = load_manifest(bundle)
    part = _load_part(Path(bundle) / manifest.central_file, "epic-central", manifest)
    model = build_from_config(part["config"])
    missing, unexpected = model.load_state_dict(part["state_dict"], strict=False)
    stray = [k for k in missing if not _ENCODER_KEY.match(k)]
    if stray or unexpected:
        raise DataError(manifest.central_file, f"weights do not fit: {stray[:3]} {unexpected[:3]}")
    return manifest, model.eval()


def encoder_has_weights(model: FWIModel, i: int) -> bool:
    return any(True for _ in model.encoder(i).parameters())


class _Normalized(nn.Module):
    """An encoder that takes raw waveforms: the normalization goes into the graph, where
    onnxruntime does it in 0.4 ms for a 14-receiver block against numpy's 1.3 ms."""

    def __init__(self, encoder: nn.Module, model: FWIModel) -> None:
        super().__init__()
        self.encoder = encoder
        self.normalization = model.normalization

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.normalization.data(waveforms))


def export_onnx(model: FWIModel, i: int, path: Path) -> None:
    """Device ``i``'s encoder as ONNX, input ``waveforms`` [batch, shots, time, receivers],
    raw (the normalization is in the graph)."""
    g = model.geometry
    block = model.blocks[i]
    example = torch.randn(1, g.n_shots, g.nt, len(block))  # not zeros: no 0/0 in the trace
    encoder = _Normalized(model.encoder(i).eval(), model).eval()
    tmp = path.with_name(f".{path.name}.tmp")
    with warnings.catch_warnings():
        # torch's TorchScript exporter announces its deprecation; the dynamo one needs
        # onnxscript, a dependency an edge user should not need for a plain export.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            encoder,
            (example,),
            str(tmp),
            input_names=["waveforms"],
            output_names=["latent"],
            dynamic_axes={"waveforms": {0: "batch"}, "latent": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, path)


class _Decode(nn.Module):
    """``FWIModel.decode`` with one input per device, for export."""

    def __init__(self, model: FWIModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model.decode(list(inputs[:-1]), inputs[-1])


def central_onnx_names(n_devices: int) -> list[str]:
    """Input names of ``central.onnx``: ``latent0`` .. and ``present`` [batch, N] bool."""
    return [f"latent{i}" for i in range(n_devices)] + ["present"]


def export_central_onnx(model: FWIModel, path: Path) -> str:
    """The centre's half as ONNX, output ``map`` (normalized); returns the file's SHA-256.

    One trace with one device missing: the masks are data, not control flow, so the graph
    serves every subset (the model's own check that a sample has a device is left out: the
    assembler never hands over an empty one)."""
    n = model.n_devices
    latents = [torch.zeros(1, *model.latent_shape(i)) for i in range(n)]
    present = torch.ones(1, n, dtype=torch.bool)
    present[0, -1] = n == 1
    names = central_onnx_names(n)
    tmp = path.with_name(f".{path.name}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
        torch.onnx.export(
            _Decode(model.eval()),
            (*latents, present),
            str(tmp),
            input_names=names,
            output_names=["map"],
            dynamic_axes={name: {0: "batch"} for name in [*names, "map"]},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


class CentralOnnx:
    """The bundle's ``central.onnx`` as two onnxruntime sessions, picked by batch size.

    A single sample, the live case, runs a session whose batch dimension is fixed at 1 when
    it loads, so onnxruntime folds the graph's shape arithmetic away (about 1,650 nodes
    become 280: 4.5 against 5.1 ms a sample on 2 cores). It runs on one thread, which
    leaves the other cores to the event loop, the broker and the web server: two threads
    bought at most 0.2 ms alone, and a decode spread over two threads waits for both
    cores. Queued samples decode together on the second session, over ``threads``
    threads."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        self.one = _ort_session(path, threads=1, batch=1)
        self.many = _ort_session(path, threads=threads)

    def run(self, feed: dict[str, Any]) -> Any:
        """The normalized maps ``[B, 1, nz, nx]`` for ``feed`` (``central_onnx_names``)."""
        batch = len(feed["present"])
        return (self.one if batch == 1 else self.many).run(None, feed)[0]


def _ort_session(path: Path, threads: int, batch: int | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle workers sleep rather than spin: on 2 cores they would take the CPU from the event
    # loop, the web server and the broker between decodes.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if batch is not None:
        options.add_free_dimension_override_by_name("batch", batch)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_central_onnx(bundle: Path | str, manifest: Manifest, threads: int = 0) -> CentralOnnx:
    """The bundle's ``central.onnx`` ready to run, or a ``DataError`` saying why not (none
    in the bundle, not this manifest's file, onnxruntime missing)."""
    if manifest.central_onnx is None:
        raise DataError(bundle, "has no central.onnx (deploy it again with `epic deploy`)")
    path = Path(bundle) / manifest.central_onnx
    if not path.is_file():
        raise DataError(path, "missing from the bundle (deploy it again with `epic deploy`)")
    if hashlib.sha256(path.read_bytes()).hexdigest() != manifest.central_onnx_sha256:
        raise DataError(path, "is not the file this manifest was written with")
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise DataError(path, "needs onnxruntime (pip install onnxruntime)") from exc
    return CentralOnnx(path, threads)
