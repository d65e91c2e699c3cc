"""What a training run is asked to do (``TrainConfig``), checked before any time is spent,
and the model and device it asks for, with every bad setting a ``ConfigError`` that names
the command-line option at fault."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from epic.lab.inference import resolve_device
from epic.shared.errors import ConfigError
from epic.shared.models.base import FWIModel
from epic.shared.models.registry import build_model, model_class

__all__ = ["TrainConfig", "attention_kernels", "build", "device_of", "train_autocast"]


@dataclass
class TrainConfig:
    """One ``epic train`` command. ``data``: OpenFWI-layout folders; ``out``: the best
    checkpoint; ``hparams``: overrides of the preset's model options; ``command``: the
    command line, kept in the checkpoint. The rest are the options of the same names."""

    model: str
    data: list[Path]
    out: Path
    preset: str = "lite"
    devices: int = 5
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    clip: float = 1.0
    val_fraction: float = 0.1
    seed: int = 0
    device_dropout: float | None = None  # None: 0.5 for epic, 0 for the others
    augment: bool = True
    mirror: bool = False  # opt-in: its middle shot is a cell off (see lab.augment)
    noise: float = 0.05
    resume: bool = False
    max_minutes: float | None = None
    device: str = "auto"
    workers: int = 0
    amp: bool = True  # bfloat16 autocast where the hardware has it (train_autocast)
    hparams: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    progress: bool = True
    # Data simulated on the compute device instead of read from folders (lab.simulated_set):
    # map sources (zip, folder or file of velocity maps) and generated families (name ->
    # count), the first ``maps_limit`` maps of each source, within ``simulate_minutes``.
    maps: list[Path] = field(default_factory=list)
    families: dict[str, int] = field(default_factory=dict)
    maps_limit: int | None = None
    simulate_minutes: float | None = None
    weights_dtype: str = "float32"  # of the saved best checkpoint: float32 or bfloat16
    # "steps": the learning rate's cosine spans the epochs; "time": it spans max_minutes
    # (a fixed wall budget, as on a GPU machine lent for minutes).
    schedule: str = "steps"
    # Weight of the (1 - SSIM) term of the loss (lab.train.loss); 0: L1 + L2 only.
    ssim_weight: float = 0.0
    # Start from this checkpoint's weights (same model, preset and devices) instead of a
    # random initialization: a fine-tune, with its own optimizer and schedule. A resumed
    # run (the same command with --resume) takes its weights from its state instead.
    init: Path | None = None

    def __post_init__(self) -> None:
        self.data = [Path(d) for d in self.data]
        self.maps = [Path(m) for m in self.maps]
        if not (self.data or self.maps or self.families):
            raise ConfigError("give dataset folders, --maps or --family", "--data")
        if self.data and (self.maps or self.families):
            raise ConfigError(
                "read folders (--data) or simulate maps (--maps, --family), not both", "--maps"
            )
        self.out = Path(self.out)
        if self.init is not None:
            self.init = Path(self.init)
        if self.device_dropout is None:
            self.device_dropout = 0.5 if self.model == "epic" else 0.0
        checks = [
            ("epochs", self.epochs >= 1, ">= 1"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("lr", self.lr > 0, "> 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("device_dropout", 0 <= self.device_dropout <= 1, "in [0, 1]"),
            ("noise", self.noise >= 0, ">= 0"),
            ("workers", self.workers >= 0, ">= 0"),
            ("max_minutes", self.max_minutes is None or self.max_minutes > 0, "> 0"),
            ("maps_limit", self.maps_limit is None or self.maps_limit >= 2, ">= 2"),
            (
                "simulate_minutes",
                self.simulate_minutes is None or self.simulate_minutes > 0,
                "> 0",
            ),
            ("weights_dtype", self.weights_dtype in ("float32", "bfloat16"), "float32 or bfloat16"),
            ("schedule", self.schedule in ("steps", "time"), "steps or time"),
            ("ssim_weight", self.ssim_weight >= 0, ">= 0"),
        ]
        if self.schedule == "time" and not self.max_minutes:
            raise ConfigError("schedule=time: needs --max-minutes", "--schedule")
        for name, ok, rule in checks:
            if not ok:
                raise ConfigError(
                    f"{name}={getattr(self, name)}: must be {rule}", "--" + name.replace("_", "-")
                )

    def as_dict(self) -> dict[str, Any]:
        """Plain types only (it goes into checkpoints)."""
        values = asdict(self)
        values.update(
            data=[str(d.resolve()) for d in self.data],
            maps=[str(m.resolve()) for m in self.maps],
            out=str(self.out.resolve()),
            init=str(self.init.resolve()) if self.init else None,
        )
        return values


def device_of(cfg: TrainConfig) -> torch.device:
    """The compute device, or a ``ConfigError`` blaming ``--device``."""
    try:
        return resolve_device(cfg.device)
    except ValueError as exc:
        raise ConfigError(str(exc), "--device") from exc


def build(cfg: TrainConfig) -> FWIModel:
    """The model, or a ``ConfigError`` naming the option at fault."""
    try:
        cls = model_class(cfg.model)
    except (ValueError, ImportError) as exc:
        raise ConfigError(f"model {cfg.model!r} is not available: {exc}", "--model") from exc
    if cfg.preset not in cls.PRESETS:
        raise ConfigError(
            f"{cfg.model} has no preset {cfg.preset!r} (it has {', '.join(cls.PRESETS)})",
            "--preset",
        )
    if cfg.hparams.get("wire_dims"):
        raise ConfigError(
            "wire_dims is fitted to a trained model, not trained: `epic compress`", "--hparam"
        )
    unknown = sorted(set(cfg.hparams) - set(cls.PRESETS[cfg.preset]))
    if unknown:
        raise ConfigError(
            f"{cfg.model} has no option(s) {', '.join(unknown)} (it has "
            f"{', '.join(cls.PRESETS[cfg.preset])})",
            "--hparam",
        )
    try:
        return build_model(cfg.model, cfg.preset, cfg.devices, **cfg.hparams)
    except (ValueError, TypeError, AssertionError) as exc:  # the model's own checks
        raise ConfigError(str(exc)) from exc


def _cpu_has_bf16() -> bool:
    # Private but stable since torch 1.x; there is no public query. A CPU without native
    # bfloat16 (AVX512-BF16 or AMX) would emulate it, slower than float32.
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def train_autocast(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether training steps run under bfloat16 autocast: ``--amp`` and a device that
    does bfloat16 natively (CUDA, or a CPU with AVX512-BF16/AMX: an EPIC-Net lite epoch
    took 166-190 s here against about 225 s in float32). Validation stays float32 on CPU,
    as ``epic eval`` runs."""
    if not cfg.amp:
        return False
    return device.type == "cuda" or (device.type == "cpu" and _cpu_has_bf16())


@contextlib.contextmanager
def attention_kernels(device: torch.device) -> Iterator[None]:
    """On CPU, attention as plain matrix products: EPIC-Net's attentions have few keys (40
    tokens) and many queries, where torch's CPU flash kernel is the slower one (an
    EPIC-Net lite step under bfloat16: 0.77 against 0.68 s, ``lab.bench.train_step``)."""
    if device.type != "cpu":
        yield
        return
    with sdpa_kernel([SDPBackend.MATH]):
        yield
