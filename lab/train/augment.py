"""Training-time augmentation and device dropout.

Three things, each drawn per sample from a seeded generator (so a resumed run draws what
an uninterrupted one would have):

* **Mirror** (``mirror``, opt-in: ``--mirror``), on the *raw* data before normalization,
  with probability 1/2: the velocity map is flipped along x, every gather's receivers are
  reversed, and the shot order is reversed (the shot at column c becomes the shot at column
  69 - c). The contract's sources at columns 0, 17, 34, 52, 69 mirror to 69, 52, 35, 17, 0:
  four land exactly on a real source (their mirrored gathers equal the forward model of the
  mirrored map, bit for bit), but the middle one is off by one cell (10 m): its gather is
  that of a source at column 35, about 50 % relative L2 away from the real column-34 gather
  of the mirrored map. That inconsistency is why mirroring is off by default; it doubles
  the variety of a small dataset at that price. ``mirror_offset`` measures the offset for
  any geometry; training does not mirror when it exceeds one cell. Flipping raw data (not
  normalized data) keeps per-device scaling right when the device blocks are not symmetric
  (70 receivers over 4 devices).
* **Noise** (``add_noise``): additive Gaussian noise on the *normalized* data, its standard
  deviation drawn uniformly in ``[0, level]`` per sample, so the network sees clean and
  noisy inputs alike. Normalized data lies in [-1, 1] and 1 % of a shot's peak maps to
  about 0.15, so a level of 0.05 hides only the faintest arrivals.
* **Device dropout** (``dropout_mask``): with probability ``p`` a sample loses a random
  number k in 1..N-1 of its N devices (random which), so that a model trained this way
  degrades gently when devices are late or gone. At least one device always stays.

Under ``torchrun`` (``epic.lab.train.distributed``) each process holds a slice of the global
batch: ``shard=(rank, world)`` draws for the whole global batch and keeps this process's
rows, so a sample gets the same draw whatever the number of processes (and one process,
``(0, 1)``, draws exactly what it always did).
"""

from __future__ import annotations

import torch

from epic.shared.geometry import Geometry

__all__ = ["add_noise", "drop_exactly", "dropout_mask", "mirror", "mirror_offset"]

Shard = tuple[int, int]  # (rank, world): this process's slice of the global batch
WHOLE: Shard = (0, 1)


def _mine(drawn: torch.Tensor, shard: Shard) -> torch.Tensor:
    """This process's rows of a draw made for the whole global batch."""
    rank, world = shard
    if world == 1:
        return drawn
    share = len(drawn) // world
    return drawn[rank * share : (rank + 1) * share]


def mirror_offset(geometry: Geometry) -> int:
    """Largest distance (cells) between a mirrored source and the real source it stands in
    for; 1 for the contract geometry (column 34 -> 35)."""
    cols = geometry.source_columns
    mirrored = [geometry.nx - 1 - c for c in reversed(cols)]
    return max(abs(a - b) for a, b in zip(mirrored, cols, strict=True))


def mirror(
    data: torch.Tensor,
    velocity: torch.Tensor,
    generator: torch.Generator,
    shard: Shard = WHOLE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip about half the samples of a batch: data ``[B, S, T, R]``, velocity ``[B, 1, Z, X]``."""
    drawn = torch.rand(data.shape[0] * shard[1], generator=generator, device=generator.device)
    flip = _mine(drawn, shard) < 0.5
    flip = flip.to(data.device)
    data = torch.where(flip[:, None, None, None], data.flip(1, 3), data)
    velocity = torch.where(flip[:, None, None, None], velocity.flip(3), velocity)
    return data, velocity


def add_noise(
    x: torch.Tensor, level: float, generator: torch.Generator, shard: Shard = WHOLE
) -> torch.Tensor:
    """``x`` plus Gaussian noise of a per-sample standard deviation uniform in ``[0, level]``."""
    if level <= 0:
        return x
    rows = x.shape[0] * shard[1]
    sigma = _mine(torch.rand(rows, generator=generator, device=generator.device), shard) * level
    noise = torch.randn(
        (rows, *x.shape[1:]), generator=generator, device=generator.device, dtype=x.dtype
    )
    noise = _mine(noise, shard)
    sigma = sigma.to(x.device, x.dtype).view(-1, *([1] * (x.dim() - 1)))
    return x + sigma * noise.to(x.device)


def _drop(count: torch.Tensor, n_devices: int, generator: torch.Generator) -> torch.Tensor:
    """Presence mask ``[B, N]`` with ``count[b]`` random devices of sample b missing."""
    scores = torch.rand(len(count), n_devices, generator=generator, device=generator.device)
    ranks = scores.argsort(dim=1).argsort(dim=1)  # a random permutation per sample
    return ranks >= count[:, None]


def dropout_mask(
    batch: int, n_devices: int, p: float, generator: torch.Generator, shard: Shard = WHOLE
) -> torch.Tensor:
    """Training mask: with probability ``p`` a sample loses k ~ U{1..N-1} devices."""
    if n_devices < 2 or p <= 0:
        return torch.ones(batch, n_devices, dtype=torch.bool, device=generator.device)
    rows = batch * shard[1]
    hit = torch.rand(rows, generator=generator, device=generator.device) < p
    k = torch.randint(1, n_devices, (rows,), generator=generator, device=generator.device)
    return _mine(_drop(torch.where(hit, k, torch.zeros_like(k)), n_devices, generator), shard)


def drop_exactly(samples: int, n_devices: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """Evaluation mask: every sample loses exactly ``k`` random devices (``0 <= k < N``)."""
    if not 0 <= k < n_devices:
        raise ValueError(f"cannot drop {k} of {n_devices} devices: need 0 <= k < {n_devices}")
    count = torch.full((samples,), k, dtype=torch.long, device=generator.device)
    return _drop(count, n_devices, generator)
