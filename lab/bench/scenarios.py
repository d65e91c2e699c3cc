"""What the benchmark deploys: which checkpoint each model runs, its bundle, and its mode.

- ``epic`` and ``inversionnet`` have shipped checkpoints (``models/``); ``fla`` and ``sla``
  have none yet, so asking for them without ``--checkpoint fla=PATH`` is an error, never a
  silent skip.
- A model whose per-device encoders have no weights (InversionNet's identity encoders) runs
  its edges in ``raw`` mode: they upload the raw block and the centre runs the whole model.
- The throughput runs need EPIC-Net for N devices where no trained checkpoint exists: an
  architecture-identical, *untrained* EPIC-Net lite (``untrained_epic``). Decode and encode
  time do not depend on the weights, so it measures speed, never fidelity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from epic.shared.errors import DataError, OptionError

__all__ = [
    "DEFAULT_CHECKPOINTS",
    "Deployed",
    "deploy",
    "parse_checkpoints",
    "resolve_checkpoint",
    "untrained_epic",
]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHECKPOINTS = {
    "epic": ROOT / "models" / "epic-lite-5.pt",
    "inversionnet": ROOT / "models" / "inversionnet-lite.pt",
    "fla": ROOT / "models" / "fla-lite-5.pt",
    "sla": ROOT / "models" / "sla-lite-5.pt",
}


@dataclass(frozen=True)
class Deployed:
    """A model ready to run: its bundle (deployment ``deployment``) and the edges' mode."""

    model: str
    checkpoint: Path
    bundle: Path
    deployment: str
    mode: str  # "latent" or "raw"
    n_devices: int
    trained: bool


def parse_checkpoints(items: list[str]) -> dict[str, Path]:
    """``["fla=runs/fla.pt", ...]`` -> ``{"fla": Path(...)}``; a bad item is an OptionError."""
    from epic.shared.models.registry import MODEL_NAMES

    out: dict[str, Path] = {}
    for item in items:
        model, sep, path = item.partition("=")
        if not sep or not model or not path:
            raise OptionError(item, "--checkpoint takes MODEL=PATH, e.g. fla=runs/fla.pt")
        if model not in MODEL_NAMES:
            raise OptionError(
                item, f"unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}"
            )
        out[model] = Path(path)
    return out


def resolve_checkpoint(model: str, overrides: dict[str, Path]) -> Path:
    """The checkpoint ``model`` runs: the override, else the shipped one, else an error."""
    from epic.shared.models.registry import MODEL_NAMES

    if model not in MODEL_NAMES:
        raise OptionError(model, f"unknown model; choose from {', '.join(MODEL_NAMES)}")
    path = overrides.get(model) or DEFAULT_CHECKPOINTS.get(model)
    if path is None:
        raise DataError(
            model, f"no trained {model} checkpoint is shipped yet; give --checkpoint {model}=PATH"
        )
    if not path.is_file():
        raise DataError(path, f"no such checkpoint file (for {model})")
    return path


def deploy(
    model: str,
    checkpoint: Path,
    out: Path,
    deployment: str,
    edges: int,
    *,
    trained: bool = True,
    onnx: bool = True,
) -> Deployed:
    """Write ``checkpoint``'s bundle for ``edges`` devices into ``out``; with ``onnx``, ONNX
    encoders too where the model has encoders (as a field deployment ships them; the edges
    then run onnxruntime). Not every partition exports: EPIC-Net's pooling for 2 devices
    (35 receivers) has no ONNX form, so the throughput runs use PyTorch throughout."""
    from epic.shared.bundle import encoder_has_weights, write_bundle
    from epic.shared.models.checkpoint import load_checkpoint

    net, _ = load_checkpoint(checkpoint)
    if net.name != model:
        raise DataError(checkpoint, f"is a {net.name} checkpoint, not {model}")
    raw = not any(encoder_has_weights(net, i) for i in range(net.n_devices))
    manifest = write_bundle(checkpoint, out, deployment, edges, onnx=onnx and not raw)
    return Deployed(
        model,
        checkpoint,
        out,
        manifest.deployment,
        "raw" if raw else "latent",
        len(manifest.devices),
        trained,
    )


def untrained_epic(n_devices: int, out: Path) -> Path:
    """An untrained EPIC-Net lite for ``n_devices`` (throughput only: no SSIM from it)."""
    import torch

    from epic.shared.models.checkpoint import save_checkpoint
    from epic.shared.models.registry import build_model

    torch.manual_seed(0)
    path = out / f"epic-lite-{n_devices}-untrained.pt"
    save_checkpoint(
        path,
        build_model("epic", "lite", n_devices),
        note="untrained: for throughput measurements only, never for fidelity",
    )
    return path
