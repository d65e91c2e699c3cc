"""Checkpoints: weights plus everything needed to rebuild and trust the model.

A checkpoint is a ``torch.save`` of plain types only (loadable with ``weights_only=True``):
``{"format", "version", "config", "state_dict", "meta"}``; ``config`` is
``FWIModel.config()`` (model name, preset, devices, hyper-parameters, geometry,
normalization) and ``meta`` is free-form provenance (command, data, seeds, figures).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from epic.shared import torchfile
from epic.shared.errors import DataError
from epic.shared.models.base import FWIModel
from epic.shared.models.registry import build_from_config

__all__ = ["load_checkpoint", "save_checkpoint"]

FORMAT = "epic-checkpoint"
VERSION = 1


def save_checkpoint(
    path: Path | str, model: FWIModel, dtype: torch.dtype = torch.float32, **meta: Any
) -> None:
    """Write atomically: a checkpoint on disk is always a whole one.

    ``dtype=torch.bfloat16`` stores the parameters in half the bytes (a GPU run's model
    must come back in 16 MiB files); buffers (BatchNorm statistics) stay float32, and
    loading casts everything back to the model's float32."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    params = {name for name, _ in model.named_parameters()}
    state = {
        k: (v.detach().to(dtype) if k in params and v.is_floating_point() else v.detach()).cpu()
        for k, v in model.state_dict().items()
    }
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config(),
        "state_dict": state,
        "meta": meta,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path: Path | str, map_location: str | torch.device = "cpu"
) -> tuple[FWIModel, dict[str, Any]]:
    """Rebuild the model in eval mode; returns it and the checkpoint's ``meta``."""
    path = Path(path)
    payload = torchfile.load(path, "checkpoint")  # weights only; a failure in a few words
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(path, "not an EPIC checkpoint")
    if payload.get("version") != VERSION:
        raise DataError(path, f"checkpoint version {payload.get('version')}, expected {VERSION}")
    model = build_from_config(payload["config"])
    model.load_state_dict(payload["state_dict"])
    model.to(map_location).eval()
    return model, payload.get("meta", {})
