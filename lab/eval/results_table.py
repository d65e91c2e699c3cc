"""The results table: every checkpoint on every test folder, as Markdown (and JSON).

Orchestration and formatting only: the figures are ``epic.lab.eval.evaluate.evaluate``'s. Each test
folder is one family, named by its folder name; a checkpoint's "mean" is the plain mean over
folders (each family counts the same, whatever its size). Robustness: the mean SSIM with
k = 0 .. N-1 of the model's N devices dropped at random per sample (``drop_seed``).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from epic.lab.eval.evaluate import evaluate
from epic.lab.eval.paper_figures import beside_the_paper
from epic.lab.inference import resolve_device
from epic.lab.train.runmeta import total_train_seconds, trained_on
from epic.lab.train.splits import open_folders
from epic.shared.errors import ConfigError
from epic.shared.models.checkpoint import load_checkpoint

__all__ = ["build_report", "format_markdown"]

METRICS = ("ssim", "mae", "rmse")
SEEN = "†"  # marks figures on a folder the checkpoint was trained on


def _names(data_dirs: Sequence[Path | str]) -> list[str]:
    """Folder names, or the paths as given where two folders share a name."""
    names = [Path(d).name for d in data_dirs]
    return [n if names.count(n) == 1 else str(d) for n, d in zip(names, data_dirs, strict=True)]


def _shown(path: str) -> str:
    """A path relative to the working directory where it lies below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


def build_report(
    checkpoints: Sequence[Path | str],
    data_dirs: Sequence[Path | str],
    drop_seed: int = 0,
    batch_size: int = 32,
    device: str = "auto",
    command: str = "",
    progress: bool = False,
    max_drop: int = 4,
) -> dict[str, Any]:
    """Evaluate every checkpoint on every folder (and, for N > 1 devices, with 1 ..
    min(N - 1, ``max_drop``) dropped); the figures as a JSON-ready dict. Every input is
    checked before the first evaluation, so a typo fails at once."""
    if max_drop < 0:
        raise ConfigError(f"max_drop must be >= 0, got {max_drop}", "--max-drop")
    if not checkpoints:
        raise ConfigError("give at least one checkpoint", "--checkpoint")
    if not data_dirs:
        raise ConfigError("give at least one test folder", "--data")
    try:
        target = resolve_device(device)
    except ValueError as exc:
        raise ConfigError(str(exc), "--device") from exc
    names = _names(data_dirs)
    entries: list[dict[str, Any]] = []
    samples: list[int] | None = None
    for path in checkpoints:
        model, meta = load_checkpoint(path)
        samples = [len(d) for d in open_folders(data_dirs, geometry=model.geometry)]
        entries.append(
            {
                "checkpoint": str(path),
                "model": model.name,
                "preset": model.preset,
                "n_devices": model.n_devices,
                "parameters": sum(p.numel() for p in model.parameters()),
                "train_seconds": total_train_seconds(meta),
                "epochs": meta.get("epochs"),
                "data": trained_on(meta),
            }
        )

    def drops(entry: dict[str, Any]) -> range:
        return range(min(entry["n_devices"], max_drop + 1))

    total = sum(len(drops(e)) for e in entries)
    with tqdm(total=total, desc="report", unit="eval", disable=not progress) as bar:
        for entry in entries:
            by_k = []
            for k in drops(entry):
                bar.set_postfix_str(f"{Path(entry['checkpoint']).name} k={k}")
                result = evaluate(
                    entry["checkpoint"],
                    data_dirs,
                    drop_devices=k,
                    seed=drop_seed,
                    batch_size=batch_size,
                    device=str(target),
                )
                rows = [{"name": n, **r} for n, r in zip(names, result["folders"], strict=True)]
                by_k.append(rows)
                bar.update()
            entry["folders"] = by_k[0]
            entry["mean"] = {m: _mean(by_k[0], m) for m in METRICS}
            entry["robustness"] = None
            if len(by_k) > 1:
                base = entry["mean"]["ssim"]
                entry["robustness"] = [
                    {
                        "drop_devices": k,
                        "ssim": _mean(rows, "ssim"),
                        "loss": base - _mean(rows, "ssim"),
                        "folders": [{"name": r["name"], "ssim": r["ssim"]} for r in rows],
                    }
                    for k, rows in enumerate(by_k)
                ]
    return {
        "command": command,
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": str(torch.__version__),
            "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name(target) if target.type == "cuda" else "cpu",
        },
        "drop_seed": drop_seed,
        "max_drop": max_drop,
        "folders": [
            {"name": n, "folder": str(d), "samples": s}
            for n, d, s in zip(names, data_dirs, samples or [], strict=True)
        ],
        "checkpoints": entries,
    }


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: Sequence[str], rows: list[list[object]]) -> list[str]:
    """Text columns left-aligned, figures right-aligned."""
    align = [
        "---" if h in ("checkpoint", "model", "preset", "trained on") else "---:" for h in header
    ]
    return [_row(header), _row(align), *(_row(r) for r in rows)]


def _scalability(entries: list[dict[str, Any]]) -> list[str]:
    """Table 3: EPIC-Net by its number of devices (only when there are several N)."""
    epic = sorted(
        (e for e in entries if e["model"] == "epic"),
        key=lambda e: (e["n_devices"], e["checkpoint"]),
    )
    if len({e["n_devices"] for e in epic}) < 2:
        return []
    header = ["devices", "checkpoint", "preset", "parameters", "train s", "epochs"]
    header += ["mean SSIM", "mean MAE", "mean RMSE", "k=1"]
    rows = []
    for e in epic:
        seconds = "-" if e["train_seconds"] is None else f"{e['train_seconds']:,.0f}"
        one = "-"
        if e["robustness"]:
            one = f"{e['robustness'][1]['ssim']:.4f} ({0.0 - e['robustness'][1]['loss']:+.4f})"
        mean = e["mean"]
        row = [e["n_devices"], f"`{e['checkpoint']}`", e["preset"], f"{e['parameters']:,}"]
        row += [seconds, "-" if e["epochs"] is None else e["epochs"]]
        row += [f"{mean['ssim']:.4f}", f"{mean['mae']:.1f}", f"{mean['rmse']:.1f}", one]
        rows.append(row)
    return [
        "",
        "## Table 3: scalability",
        "",
        "EPIC-Net by its number of devices N (the paper's Figure 8): the same architecture,",
        "only the number of encoders changes; figures are Table 1's means and Table 2's k=1.",
        "Compare rows trained with the same budget (*train s*).",
        "",
        *_table(header, rows),
    ]


def format_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown page: header, side-by-side table, robustness table, notes."""
    folders, entries = report["folders"], report["checkpoints"]
    machine = report["machine"]
    lines = [
        "# Results",
        "",
        "Every checkpoint scored on every test folder (one folder per family), written by",
        "`epic report` (`lab/eval/results_table.py`, figures from `lab/eval/evaluate.py`).",
        "Re-run this command to re-create this file:",
        "",
        "```sh",
        report["command"],
        "```",
        "",
        f"- date: {report['date']}",
        f"- machine: {machine['platform']}, {machine['cpus']} CPUs, torch {machine['torch']}, "
        f"evaluated on {machine['device']}, torch threads: {machine['threads']}",
        "- test folders: "
        + ", ".join(f"`{f['name']}` ({f['samples']} samples, `{f['folder']}`)" for f in folders),
        "",
        "## Table 1: side by side",
        "",
        "SSIM (higher is better), MAE and RMSE in m/s (lower is better): means of per-sample",
        "values over every sample of a folder; *mean* is the mean over the folders.",
        "",
    ]
    header = ["checkpoint", "model", "preset", "devices", "parameters", "train s", "epochs"]
    header += ["trained on"]
    for name in [f["name"] for f in folders] + ["mean"]:
        header += [f"{name} SSIM", f"{name} MAE", f"{name} RMSE"]
    rows, seen_any = [], []
    for e in entries:
        seconds = "-" if e["train_seconds"] is None else f"{e['train_seconds']:,.0f}"
        epochs = "-" if e["epochs"] is None else e["epochs"]
        trained = ", ".join(f"`{_shown(p)}`" for p in e["data"]) or "-"
        row = [f"`{e['checkpoint']}`", e["model"], e["preset"], e["n_devices"]]
        row += [f"{e['parameters']:,}", seconds, epochs, trained]
        seen = [f for f in e["folders"] if f["seen_in_training"]]
        seen_any += [(e["checkpoint"], f["name"]) for f in seen]
        for f in [*e["folders"], {**e["mean"], "seen_in_training": bool(seen)}]:
            mark = SEEN if f["seen_in_training"] else ""
            row += [f"{f['ssim']:.4f}{mark}", f"{f['mae']:.1f}{mark}", f"{f['rmse']:.1f}{mark}"]
        rows.append(row)
    lines += _table(header, rows)
    lines += [
        "",
        "## Table 2: robustness",
        "",
        "Mean SSIM over the folders with k of the model's N devices dropped at random per",
        f"sample (seed {report['drop_seed']}: the same draw for every model with the same N);",
        "in brackets the change against k = 0. Models with one device are left out; k",
        f"stops at {report.get('max_drop', 4)} (`--max-drop`).",
        "",
    ]
    robust = [e for e in entries if e["robustness"]]
    if robust:
        most = max(len(e["robustness"]) for e in robust)
        header = ["checkpoint", "model", "devices", *(f"k={k}" for k in range(most))]
        rows = []
        for e in robust:
            mark = SEEN if any(f["seen_in_training"] for f in e["folders"]) else ""
            cells = [f"{r['ssim']:.4f} ({0.0 - r['loss']:+.4f})" for r in e["robustness"]]
            cells[0] = f"{e['robustness'][0]['ssim']:.4f}"
            cells += ["-"] * (most - len(cells))
            rows.append([f"`{e['checkpoint']}`{mark}", e["model"], e["n_devices"], *cells])
        lines += _table(header, rows)
    else:
        lines.append("No checkpoint has more than one device.")
    lines += _scalability(entries)
    lines += beside_the_paper(folders, entries)
    lines += ["", "## Notes", ""]
    if seen_any:
        pairs = "; ".join(f"`{c}` on `{n}`" for c, n in seen_any)
        lines.append(
            f"- {SEEN} The checkpoint was trained on this test folder (it is in its meta "
            f"`data`), so these figures include training samples and are not test figures: "
            f"{pairs}. The means and the robustness row of such a checkpoint include them."
        )
    else:
        lines.append(
            "- No test folder appears in the training data of any checkpoint (meta `data`, "
            "compared by resolved path): the test folders are never seen in training."
        )
    lines += [
        "- *train s* and *epochs*: training time (all sessions of a resumed run, and the "
        "runs a fine-tune (`epic train --init`) started from) and the epoch of the saved, "
        "best-on-validation checkpoint, from the checkpoint's meta.",
        "- A device dropped is an edge whose receivers never reach the centre; the model "
        "fuses what the others send (see `docs/training.md`, device dropout).",
        "",
    ]
    return "\n".join(lines)
