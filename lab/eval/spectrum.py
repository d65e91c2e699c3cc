"""What EPIC-Net's time decimation keeps and loses, read off real shot gathers.

    python -m epic.lab.eval.spectrum DIR [--samples 64] [--factor 8] [--plot docs/spectrum.png]

The mean amplitude spectrum over every trace of ``--samples`` samples of an OpenFWI-layout
folder, raw and as the encoder reads it (after the per-shot normalization, whose log
compression adds harmonics), beside the decimation filter's response
(``epic.shared.models.decimation``). Prints the share of each spectrum's energy above the
filter's -6 dB point and above the decimated Nyquist frequency: what the encoder can no
longer see. (The raw gathers hold next to nothing there; the normalized ones hold the
harmonics that the log compression makes, not information about the subsurface.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from epic.shared.data.normalization import Normalization
from epic.shared.data.openfwi import OpenFWIDataset
from epic.shared.models.decimation import lowpass_taps
from epic.shared.partition import device_blocks

__all__ = ["main", "spectra"]


def spectra(x: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """``x`` ``[n, shots, nt, receivers]`` -> (frequencies in Hz, mean power per frequency)."""
    power = np.abs(np.fft.rfft(x, axis=2)) ** 2
    return np.fft.rfftfreq(x.shape[2], dt), power.mean(axis=(0, 1, 3))


def _share_above(freqs: np.ndarray, power: np.ndarray, hz: float) -> float:
    return float(power[freqs > hz].sum() / power.sum())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--factor", type=int, default=8)
    p.add_argument("--devices", type=int, default=5)
    p.add_argument("--plot", type=Path)
    args = p.parse_args(argv)
    dataset = OpenFWIDataset(args.folder)
    picks = np.linspace(0, len(dataset) - 1, min(args.samples, len(dataset))).astype(int)
    raw = np.stack([dataset.raw(int(i))[0] for i in picks])
    dt = dataset.geometry.dt_s
    blocks = device_blocks(args.devices, dataset.geometry.n_receivers)
    norm = Normalization().data(torch.from_numpy(raw), blocks)
    nyquist = 0.5 / (dt * args.factor)
    cutoff = 0.8 * nyquist  # lowpass_taps' default: the filter's -6 dB point
    f, p_raw = spectra(raw, dt)
    _, p_norm = spectra(norm.numpy(), dt)
    print(
        f"{args.folder}: {len(picks)} samples, decimation by {args.factor} "
        f"(Nyquist {nyquist:.1f} Hz, -6 dB at {cutoff:.1f} Hz)"
    )
    for name, power in (("raw", p_raw), ("normalized", p_norm)):
        print(
            f"  {name:10s} energy above {cutoff:.1f} Hz: {_share_above(f, power, cutoff):.2e}, "
            f"above {nyquist:.1f} Hz: {_share_above(f, power, nyquist):.2e}"
        )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        taps = lowpass_taps(args.factor).double().numpy()
        response = np.abs(np.fft.rfft(taps, 8192))
        fr = np.fft.rfftfreq(8192, dt)
        fig, ax = plt.subplots(figsize=(7, 3.6))
        ax.semilogy(f, p_raw / p_raw.max(), label="raw gathers")
        ax.semilogy(f, p_norm / p_norm.max(), label="normalized (what the encoder reads)")
        ax.semilogy(fr, response**2, "k--", label=f"decimation filter (x{args.factor})")
        ax.axvline(nyquist, color="grey", lw=0.8)
        ax.text(nyquist, 2e-9, f" {nyquist:.1f} Hz: new Nyquist", fontsize=8)
        ax.set(
            xlim=(0, 200),
            ylim=(1e-9, 2),
            xlabel="frequency (Hz)",
            ylabel="power (relative to peak)",
        )
        ax.legend(fontsize=8)
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
