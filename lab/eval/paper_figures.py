"""The EPIC paper's fidelity figures, and the project's own bar, to set beside ours.

The paper's Table 2 (SSIM on OpenFWI's test sets, GPU-trained on OpenFWI's full training
sets) for its EPIC-Net, InversionNet (InV) and the split baselines, and the bar this
project sets itself: a model trained on 2 CPU cores, and one from a GPU run. A test
folder is matched to a family by its name (``FlatVelA-test11``, ``flatvel-a`` ...).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["BAR_CPU", "BAR_GPU", "PAPER_SSIM", "beside_the_paper", "family_of"]

# family: {model: SSIM}, the paper's Table 2 (A variants we test on).
PAPER_SSIM: dict[str, dict[str, float]] = {
    "flatvel-a": {"epic": 0.9987, "inversionnet": 0.9895, "fla": 0.9938, "sla": 0.9944},
    "flatfault-a": {"epic": 0.9882, "inversionnet": 0.9798, "fla": 0.9719, "sla": 0.9824},
    "curvevel-a": {"epic": 0.9198, "inversionnet": 0.8223, "fla": 0.8827, "sla": 0.8855},
}
BAR_CPU = {"flatvel-a": 0.93, "flatfault-a": 0.85, "curvevel-a": 0.75}
BAR_GPU = {"flatvel-a": 0.98, "flatfault-a": 0.95, "curvevel-a": 0.85}


def family_of(folder_name: str) -> str | None:
    """``FlatVelA-test11`` or ``flatvel-a`` -> ``flatvel-a``; None for other families."""
    key = re.sub(r"[^a-z]", "", folder_name.lower())
    for family in PAPER_SSIM:
        if key.startswith(family.replace("-", "")):
            return family
    return None


def beside_the_paper(folders: list[dict[str, Any]], entries: list[dict[str, Any]]) -> list[str]:
    """Markdown: per test folder of a paper family, each checkpoint's SSIM, the paper's for
    the same model, and the project's bars; nothing when no folder is such a family."""
    matched: list[tuple[int, Any, str]] = []  # (folder index, name, family)
    for i, f in enumerate(folders):
        family = family_of(f["name"])
        if family is not None:
            matched.append((i, f["name"], family))
    if not matched:
        return []
    header = ["checkpoint", "model"]
    for _, name, _ in matched:
        header += [f"{name} SSIM", "paper"]
    rows = []
    for e in entries:
        row = [f"`{e['checkpoint']}`", e["model"]]
        for i, _, family in matched:
            paper = PAPER_SSIM[family].get(e["model"])
            row += [f"{e['folders'][i]['ssim']:.4f}", "-" if paper is None else f"{paper:.4f}"]
        rows.append(row)
    for label, bar in (("our bar, 2 CPU cores", BAR_CPU), ("our bar, one GPU run", BAR_GPU)):
        row = [label, "epic"]
        for _, _, family in matched:
            row += [f">= {bar[family]:.2f}", ""]
        rows.append(row)
    align = ["---", "---"] + ["---:"] * (len(header) - 2)
    return [
        "",
        "## Beside the paper",
        "",
        "SSIM per test folder next to the EPIC paper's Table 2 for the same model (GPU-trained",
        "on OpenFWI's full training sets, tested on OpenFWI's test sets), and the bar this",
        "project sets itself for EPIC-Net.",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(str(c) for c in r) + " |" for r in rows),
    ]
