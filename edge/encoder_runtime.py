"""One device's encoder, run with PyTorch or onnxruntime, from raw block to latent.

``EncoderRuntime.load(bundle, device_id, runtime, threads)`` reads the manifest and only that
device's encoder file. ``encode(block)`` normalizes the device's raw block ``[5, 1000, r]``
exactly as training did (``Normalization.data`` over the block alone: each edge scales by
its own receivers' peak) and returns the latent as float32 numpy, shaped as the manifest's
``latent_shape``. Blocking: the daemon calls it in a worker thread.

``runtime="auto"`` takes onnxruntime when it is installed and the bundle has this device's
``.onnx`` file (``epic deploy --onnx``), else PyTorch. The onnx path normalizes in numpy
(``normalize_numpy``; it agrees with the torch code within 1e-5).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from epic.shared.data.normalization import Normalization
from epic.shared.errors import DataError, OptionError
from epic.shared.geometry import Geometry
from epic.shared.manifest import DeviceEntry, Manifest, load_manifest

__all__ = ["RUNTIMES", "EncoderRuntime", "normalize_numpy"]

RUNTIMES = ("auto", "torch", "onnx")
_EPS = 1e-12  # as Normalization's


def normalize_numpy(block: np.ndarray, norm: Normalization) -> np.ndarray:
    """``Normalization.data`` for one device's block ``[..., shots, time, receivers]``."""
    x = np.asarray(block, dtype=np.float32)
    if norm.mode == "global":
        s = np.float32(norm.scale)
    else:
        s = np.maximum(np.abs(x).max(axis=(-2, -1), keepdims=True), np.float32(_EPS))
    y = np.sign(x) * np.log1p(np.float32(norm.gain) * np.abs(x) / s) / np.log1p(norm.gain)
    return y.astype(np.float32, copy=False)


def onnx_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


@dataclass
class EncoderRuntime:
    manifest: Manifest
    device: DeviceEntry
    kind: str  # "torch" or "onnx"
    normalization: Normalization
    _run: Callable[[np.ndarray], np.ndarray]

    @classmethod
    def load(
        cls, bundle: Path | str, device_id: str, runtime: str = "auto", threads: int = 1
    ) -> EncoderRuntime:
        if runtime not in RUNTIMES:
            raise OptionError(runtime, f"runtime must be one of {', '.join(RUNTIMES)}")
        if threads < 1:
            raise OptionError(str(threads), "threads must be >= 1")
        manifest = load_manifest(bundle)
        device = manifest.device(device_id)
        norm = Normalization.from_dict(manifest.config["normalization"])
        onnx_path = Path(bundle) / device.onnx_file if device.onnx_file else None
        has_onnx = onnx_path is not None and onnx_path.is_file()
        if runtime == "onnx" and not has_onnx:
            raise DataError(bundle, f"no ONNX encoder for {device_id} (deploy with --onnx)")
        if runtime == "onnx" and not onnx_available():
            raise DataError(bundle, "onnxruntime is not installed (pip install onnxruntime)")
        if runtime == "onnx" or (runtime == "auto" and has_onnx and onnx_available()):
            assert onnx_path is not None
            return cls(manifest, device, "onnx", norm, _onnx_runner(onnx_path, threads))
        return cls(manifest, device, "torch", norm, _torch_runner(bundle, device_id, threads))

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return tuple(self.device.latent_shape)

    @property
    def block_shape(self) -> tuple[int, int, int]:
        """The raw block this device encodes: ``[shots, time, its receivers]``."""
        g = Geometry.from_dict(self.manifest.config["geometry"])
        a, b = self.device.receivers
        return (g.n_shots, g.nt, b - a)

    def normalize(self, block: np.ndarray) -> np.ndarray:
        """The block as the encoder sees it (torch code, or its numpy twin for onnx)."""
        if self.kind == "onnx":
            return normalize_numpy(block, self.normalization)
        import torch

        x = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))
        return self.normalization.data(x).numpy()

    def encode(self, block: np.ndarray) -> np.ndarray:
        """Raw block ``[shots, time, receivers]`` -> latent (float32, ``latent_shape``)."""
        if tuple(block.shape) != self.block_shape:
            raise DataError(
                self.device.id, f"block shape {tuple(block.shape)}, expected {self.block_shape}"
            )
        if self.kind == "onnx" and self.device.onnx_normalizes:
            x = np.ascontiguousarray(block, dtype=np.float32)  # the graph normalizes
        else:
            x = self.normalize(block)
        latent = self._run(x[None])
        return np.asarray(latent, dtype=np.float32).reshape(self.latent_shape)


def _torch_runner(bundle: Path | str, device_id: str, threads: int) -> Callable:
    # Imported here: the onnx path runs without torch installed or loaded.
    try:
        import torch
    except ImportError:
        raise DataError(
            bundle, "PyTorch is not installed: deploy the bundle with --onnx, or install torch"
        ) from None

    from epic.shared.bundle import load_edge_encoder

    torch.set_num_threads(threads)
    _, encoder = load_edge_encoder(bundle, device_id)

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return encoder(torch.from_numpy(batch)).numpy()

    return run


def _onnx_runner(path: Path, threads: int) -> Callable:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a bad file
        raise DataError(path, f"onnxruntime cannot load it ({exc})") from exc
    name = session.get_inputs()[0].name

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {name: batch})[0]

    return run
