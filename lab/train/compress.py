"""``epic compress``: fit a trained EPIC-Net's wire code (``epic.shared.models.wire_code``).

Encodes the given folders (training data: the code must describe the latents the model
makes in the field, not one test set), fits each device's principal axes and writes a new
checkpoint with the code in it. Nothing is retrained: the encoders and the decoder keep
their weights, and the new checkpoint decodes the k coordinates as the old one decoded
the tokens, up to what the dropped directions held.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from epic.shared.data.openfwi import OpenFWIDataset
from epic.shared.errors import ConfigError
from epic.shared.models.checkpoint import load_checkpoint, save_checkpoint
from epic.shared.models.epic_encoder import DeviceEncoder
from epic.shared.models.epicnet import EpicNet
from epic.shared.models.registry import build_from_config
from epic.shared.models.wire_code import WireDecoder, WireEncoder, fit_pair

__all__ = ["compress"]


@torch.inference_mode()
def _tokens(model: EpicNet, data: OpenFWIDataset, count: int, batch: int, progress: bool):
    per_device: list[list[torch.Tensor]] = [[] for _ in range(model.n_devices)]
    bar = tqdm(total=count, desc="encode", unit="sample", disable=not progress)
    for start in range(0, count, batch):
        x = torch.stack([data[i][0] for i in range(start, min(start + batch, count))])
        for i, part in enumerate(model.split(x)):
            encoder = model.encoders[i]
            assert isinstance(encoder, DeviceEncoder)  # EPIC-Net's encoders
            per_device[i].append(encoder.tokens(part))
        bar.update(len(x))
    bar.close()
    return [torch.cat(t) for t in per_device]


def compress(
    checkpoint: Path | str,
    data: Sequence[Path | str],
    dims: int,
    out: Path | str,
    limit: int | None = None,
    batch_size: int = 32,
    command: str = "",
    progress: bool = True,
) -> dict[str, Any]:
    """Fit a ``dims``-number wire code on ``data`` (its first ``limit`` samples) and write
    the checkpoint to ``out``; returns what was fitted (also kept in the checkpoint)."""
    model, meta = load_checkpoint(checkpoint)
    if not isinstance(model, EpicNet):
        raise ConfigError(
            f"{checkpoint} is {model.name}; a wire code is for EPIC-Net", "--checkpoint"
        )
    if model.hparams["wire_dims"]:
        raise ConfigError(
            f"{checkpoint} already sends {model.hparams['wire_dims']} numbers a device; "
            "compress the checkpoint it was made from",
            "--checkpoint",
        )
    tokens_dim = model.n_tokens * model.hparams["d_model"]
    if not 1 <= dims <= tokens_dim:
        raise ConfigError(f"{dims}: must be 1..{tokens_dim} (a device's tokens)", "--dims")
    dataset = OpenFWIDataset(data, model.normalization, model.blocks, model.geometry)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    if count <= dims:
        raise ConfigError(f"{count} samples cannot fit {dims} directions; give more", "--data")
    tokens = _tokens(model, dataset, count, batch_size, progress)

    config = model.config()
    config["hparams"] = {**config["hparams"], "wire_dims": dims}
    coded = build_from_config(config)
    missing, unexpected = coded.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(".wire." in k or k.startswith("unwire.") for k in missing)
    # Built from an EPIC-Net's config with wire_dims set: an EPIC-Net with both halves.
    assert isinstance(coded, EpicNet) and coded.unwire is not None
    energy = []
    for i in range(model.n_devices):
        edge, centre = coded.encoders[i], coded.unwire[i]
        assert isinstance(edge, DeviceEncoder) and isinstance(edge.wire, WireEncoder)
        assert isinstance(centre, WireDecoder)
        energy.append(float(fit_pair(edge.wire, centre, tokens[i])))
    fitted = {
        "dims": dims,
        "from": str(checkpoint),
        "data": [str(Path(d)) for d in data],
        "samples": count,
        "variance_kept": [round(e, 6) for e in energy],
        "command": command,
    }
    save_checkpoint(out, coded.eval(), **{**meta, "wire_code": fitted})
    return fitted
