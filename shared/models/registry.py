"""Model names as the command line and checkpoints spell them."""

from __future__ import annotations

import importlib
from typing import Any

from epic.shared.data.normalization import Normalization
from epic.shared.geometry import Geometry
from epic.shared.models.base import FWIModel

__all__ = ["MODEL_NAMES", "build_from_config", "build_model", "model_class"]

# name -> "module:Class"; imported on first use so that one model's import cost (or bug)
# never touches the others.
_MODELS = {
    "epic": "epic.shared.models.epicnet:EpicNet",
    "inversionnet": "epic.shared.models.inversionnet:InversionNet",
    "fla": "epic.shared.models.fla:FLA",
    "sla": "epic.shared.models.sla:SLA",
}
MODEL_NAMES = tuple(_MODELS)


def model_class(name: str) -> type[FWIModel]:
    try:
        module, cls = _MODELS[name].split(":")
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(_MODELS)}") from None
    return getattr(importlib.import_module(module), cls)


def build_model(name: str, preset: str = "lite", n_devices: int = 5, **kwargs: Any) -> FWIModel:
    """A fresh model. ``kwargs``: ``geometry``, ``normalization`` and preset overrides."""
    return model_class(name)(n_devices=n_devices, preset=preset, **kwargs)


def build_from_config(config: dict[str, Any]) -> FWIModel:
    """A fresh model from ``FWIModel.config()`` (as a checkpoint stores it). Options a
    model gained after the checkpoint was written take the values that rebuild the
    architecture it was trained with (the class's ``LEGACY``), not today's preset."""
    cls = model_class(config["model"])
    hparams = {**getattr(cls, "LEGACY", {}), **config["hparams"]}
    return build_model(
        config["model"],
        config["preset"],
        config["n_devices"],
        geometry=Geometry.from_dict(config["geometry"]),
        normalization=Normalization.from_dict(config["normalization"]),
        **hparams,
    )
