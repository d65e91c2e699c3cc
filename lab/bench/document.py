"""The benchmark's document as people read it: Table 1 in Markdown, the robustness curve and
the throughput table, and one PNG (latency per stage, robustness, throughput)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["MODEL_KEYS", "TOP_KEYS", "check_schema", "markdown", "plot"]

# The issue's contract for --json: any script can rely on these, each a number.
TOP_KEYS = ("link", "edges", "samples", "models")
MODEL_KEYS = (
    "l_edge_ms_p50",
    "l_comm_ms_p50",
    "l_central_ms_p50",
    "l_total_ms_p50",
    "l_total_ms_p95",
    "bytes_per_sample",
    "energy_mj_per_sample",
    "ssim",
    "maps",
    "lost",
)

_NAMES = {"epic": "EPIC", "inversionnet": "InversionNet (centralized)", "fla": "FLA", "sla": "SLA"}


def check_schema(doc: dict) -> list[str]:
    """What in ``doc`` breaks the ``--json`` contract (empty: nothing)."""
    problems = [f"no {key!r}" for key in TOP_KEYS if key not in doc]
    if not isinstance(doc.get("link"), str):
        problems.append("'link' is not a string")
    for key in ("edges", "samples"):
        if not _number(doc.get(key)):
            problems.append(f"{key!r} is not a number")
    models = doc.get("models")
    if not isinstance(models, dict) or not models:
        return [*problems, "'models' is not a non-empty object"]
    for model, figures in models.items():
        for key in MODEL_KEYS:
            if not _number((figures or {}).get(key)):
                problems.append(f"models.{model}.{key} is not a number")
    return problems


def _number(value: object) -> bool:
    import math

    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _f(value: float | None, fmt: str = ".1f") -> str:
    return "–" if value is None else format(value, fmt)


def _bytes(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1e6:.2f} MB" if value >= 1e6 else f"{value / 1e3:.2f} kB"


def _ratio(model: str, figures: dict) -> str:
    if model == "inversionnet":
        return "1 (baseline)"
    x = figures.get("l_total_x_lower")
    return "–" if x is None else f"{x:.1f}x lower"


def table(doc: dict) -> str:
    """Table 1: one row a model."""
    head = (
        "| model | L_edge p50 (ms) | L_comm p50 (ms) | L_central p50 (ms) | L_total p50 / p95 (ms) "
        "| L_total vs centralized | bytes/sample | energy mJ/sample/device (transmit; with tail) "
        "| SSIM | maps / lost |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for model, f in doc["models"].items():
        rows.append(
            f"| {_NAMES.get(model, model)} | {_f(f['l_edge_ms_p50'], '.2f')} "
            f"| {_f(f['l_comm_ms_p50'])} | {_f(f['l_central_ms_p50'])} "
            f"| {_f(f['l_total_ms_p50'])} / {_f(f['l_total_ms_p95'])} | {_ratio(model, f)} "
            f"| {_bytes(f['bytes_per_sample'])} "
            f"| {_f(f['energy_mj_per_sample'])}; "
            f"{_f(f.get('energy_mj_per_sample_with_tail'), '.0f')} "
            f"| {_f(f['ssim'], '.4f')} | {f['maps']} / {f['lost']} |"
        )
    return head + "\n".join(rows) + "\n"


def ratios(doc: dict) -> str:
    lines = []
    for model, f in doc["models"].items():
        if model == "inversionnet" or f.get("l_total_x_lower") is None:
            continue
        lines.append(
            f"- {_NAMES.get(model, model)} against centralized InversionNet: L_total "
            f"{f['l_total_x_lower']}x lower, energy {f['energy_x_lower']}x lower "
            f"({f['energy_with_tail_x_lower']}x with the RRC tail), {f['bytes_x_fewer']}x fewer "
            f"bytes, SSIM {f['ssim_vs_centralized']:+.4f}."
        )
    return "\n".join(lines) + ("\n" if lines else "")


def robustness_table(rob: dict) -> str:
    out = (
        f"EPIC, {rob['link']}, one more edge SIGKILLed every {rob['kill_every_samples']} "
        f"samples (killed in order: {', '.join(rob['killed']) or 'none'}), centre "
        f"`--min-devices 1`; a pool of {rob.get('pool_size', '?')} samples replayed from its "
        "first, so every row scores the same samples; devices cut counted from each map's "
        "devices used.\n\n"
        "| devices cut | maps | mean SSIM | L_total p50 (ms) |\n|---:|---:|---:|---:|\n"
    )
    for row in rob["curve"]:
        out += (
            f"| {row['devices_cut']} | {row['maps']} | {_f(row['ssim'], '.4f')} "
            f"| {_f(row['l_total_ms_p50'])} |\n"
        )
    return out


def scaling_table(sc: dict) -> str:
    out = (
        f"Link `none`, edges at {sc['rate_hz']} Hz (as fast as they can), {sc['samples']} samples "
        "a run; edges, broker and centre share this machine's cores.\n\n"
        "| edges | edge processes | weights | maps/s | saturated | maps | partial | lost |\n"
        "|---:|---:|---|---:|---|---:|---:|---:|\n"
    )
    for r in sc["rows"]:
        out += (
            f"| {r['edges']} | {r['edge_processes']} | {r['weights']} "
            f"| {_f(r['maps_per_s'], '.2f')} | {'yes' if r.get('saturated') else 'no'} "
            f"| {r['maps']} | {r['partial']} | {r['lost']} |\n"
        )
    return out


def markdown(doc: dict) -> str:
    """The whole result as Markdown (what ``--md`` writes)."""
    m = doc["machine"]
    parts = [
        f"Link `{doc['link']}`, {doc['edges']} edges, {doc['samples']} samples at "
        f"{doc['rate_hz']} Hz (`sim:{doc['family']}`), {doc['date']}, "
        f"{m['cpus']} CPUs ({m['cpu_model']}), load at start {m['load_1_5_15']}.\n\n",
        f"Command: `{doc['command']}`\n\n" if doc.get("command") else "",
        table(doc),
        "\n" + ratios(doc) if ratios(doc) else "",
        f"\nEnergy: {doc['energy_model']}; headline without the RRC tail.\n",
    ]
    if doc.get("robustness"):
        parts += ["\n### Robustness\n\n", robustness_table(doc["robustness"])]
    if doc.get("scaling"):
        parts += ["\n### Throughput against the number of edges\n\n", scaling_table(doc["scaling"])]
    return "".join(parts)


def plot(doc: dict, out: Path) -> None:
    """Latency per stage per model (log scale), the robustness curve, the throughput."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    panels = 1 + bool(doc.get("robustness")) + bool(doc.get("scaling"))
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.2), squeeze=False)
    ax = axes[0, 0]
    stages = [
        ("L_edge", "l_edge_ms_p50"),
        ("L_comm", "l_comm_ms_p50"),
        ("L_central", "l_central_ms_p50"),
        ("L_total", "l_total_ms_p50"),
    ]
    models = list(doc["models"])
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(stages))
    for i, model in enumerate(models):
        values = [doc["models"][model].get(key) or np.nan for _, key in stages]
        ax.bar(x + i * width, values, width, label=_NAMES.get(model, model))
    ax.set_xticks(x + width * (len(models) - 1) / 2, [s for s, _ in stages])
    ax.set_yscale("log")
    ax.set_ylabel("p50 latency (ms, log scale)")
    ax.set_title(f"Latency per stage ({doc['link']}, {doc['edges']} edges)")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_ylim(top=ax.get_ylim()[1] * 8)  # room for the legend above the tallest bar
    col = 1
    if doc.get("robustness"):
        ax = axes[0, col]
        curve = [r for r in doc["robustness"]["curve"] if r["ssim"] is not None]
        ax.plot([r["devices_cut"] for r in curve], [r["ssim"] for r in curve], "o-")
        ax.set_xlabel("devices cut off mid-run")
        ax.set_ylabel("mean SSIM")
        ax.set_title("EPIC robustness")
        ax.set_xticks(range(doc["edges"]))
        if curve:  # never zoom a small change into a cliff
            values = [r["ssim"] for r in curve]
            ax.set_ylim(max(0.0, min(values) - 0.1), min(1.0, max(values) + 0.1))
        col += 1
    if doc.get("scaling"):
        ax = axes[0, col]
        rows = [r for r in doc["scaling"]["rows"] if r["maps_per_s"] is not None]
        ax.plot([r["edges"] for r in rows], [r["maps_per_s"] for r in rows], "s-")
        ax.set_xscale("log")
        ax.set_xticks([r["edges"] for r in rows], [str(r["edges"]) for r in rows])
        ax.set_xticks([], minor=True)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("edges")
        ax.set_ylabel("maps per second")
        ax.set_title("Throughput (link none, this machine)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
