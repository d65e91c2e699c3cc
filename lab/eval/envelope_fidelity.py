"""What the wire costs in fidelity: SSIM of maps decoded from latents that went through
``pack``/``unpack`` against maps decoded from float32 latents.

The reference is the model's own float32 latents, or, for a model with a wire code
(``epic compress``), the checkpoint it was compressed from (``--against``): then the loss
counts the dropped directions as well as the quantization, all that the wire costs.

Used by ``tests/shared/test_envelope_fidelity.py`` (small simulated set, in CI) and by hand
on held-out data for the figures in ``shared/wire/envelope.py``'s docstring::

    python -m epic.lab.eval.envelope_fidelity models/epic-lite-5.pt data/real/FlatVelA-test11 ...
        [--against runs/epic-lite-5-tokens.pt]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from epic.shared.data.openfwi import OpenFWIDataset
from epic.shared.map_quality import ssim
from epic.shared.models.base import FWIModel
from epic.shared.models.checkpoint import load_checkpoint
from epic.shared.wire import Envelope, LatentDtype, pack, unpack

__all__ = ["wire_fidelity"]

_HASH = "0" * 16


def _through_wire(latent: torch.Tensor, dtype: LatentDtype) -> tuple[torch.Tensor, int]:
    env = Envelope("fidelity", "s0", "dev-0", _HASH, 0, 0, latent.numpy())
    wire = pack(env, dtype=dtype)
    return torch.from_numpy(unpack(wire).data), len(wire)


@torch.inference_mode()
def wire_fidelity(
    model: FWIModel,
    roots: Sequence[Path | str],
    dtypes: Sequence[LatentDtype] = tuple(LatentDtype),
    limit: int | None = None,
    against: FWIModel | None = None,
) -> dict[str, dict[str, float]]:
    """Per dtype: mean SSIM against the truth, mean SSIM lost against float32 latents of
    ``against`` (default: ``model``'s own; the worst sample's loss too), and bytes per
    envelope."""
    reference = model if against is None else against
    data = OpenFWIDataset(roots, model.normalization, model.blocks, model.geometry)
    count = len(data) if limit is None else min(limit, len(data))
    norm = model.normalization
    results: dict[str, dict[str, list[float]]] = {
        d.name.lower(): {"ssim": [], "loss": [], "bytes": []} for d in dtypes
    }
    for index in range(count):
        x, v = data[index]
        latents = model.encode(x[None])
        present = torch.ones(1, model.n_devices, dtype=torch.bool)
        truth = v.reshape(1, 1, *v.shape[-2:])
        exact = norm.velocity_inverse(reference(x[None], present))
        base = ssim(exact, norm.velocity_inverse(truth))
        for dtype in dtypes:
            wired, sizes = [], []
            for z in latents:
                w, n = _through_wire(z[0], dtype)
                wired.append(w[None])
                sizes.append(n)
            pred = norm.velocity_inverse(model.decode(wired, present))
            s = ssim(pred, norm.velocity_inverse(truth))
            r = results[dtype.name.lower()]
            r["ssim"].append(float(s))
            r["loss"].append(float(base - s))
            r["bytes"].append(float(np.mean(sizes)))
    return {
        name: {
            "ssim": float(np.mean(r["ssim"])),
            "ssim_loss_mean": float(np.mean(r["loss"])),
            "ssim_loss_max": float(np.max(np.abs(r["loss"]))),
            "bytes_per_envelope": float(np.mean(r["bytes"])),
            "samples": count,
        }
        for name, r in results.items()
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m epic.lab.eval.envelope_fidelity")
    parser.add_argument("checkpoint")
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--against", help="reference checkpoint (the uncompressed model)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    net, _ = load_checkpoint(args.checkpoint)
    ref = load_checkpoint(args.against)[0] if args.against else None
    for name, figures in wire_fidelity(net, args.folders, against=ref).items():
        print(name, {k: round(v, 5) for k, v in figures.items()})


if __name__ == "__main__":
    main()
