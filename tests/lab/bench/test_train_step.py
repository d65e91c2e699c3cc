"""The training-step bench runs the step ``epic train`` runs, for every kind of variant."""

from __future__ import annotations

import json

from epic.lab.bench.train_step import main, parse_variant
from tests.lab.conftest import TINY_EPIC


def test_variants_parse_with_lists_and_flags():
    assert parse_variant("epic:token_grid=[4,2],amp=false") == (
        "epic",
        {"token_grid": [4, 2], "amp": False},
    )
    assert parse_variant("inversionnet") == ("inversionnet", {})


def test_the_bench_times_each_variant_side_by_side(capsys):
    tiny = ",".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in TINY_EPIC.items())
    variants = [f"epic:{tiny}", f"epic:{tiny},math_attention=false,ssim_weight=0.5,amp=false"]
    main(
        ["--batch-size", "2", "--steps", "1", "--threads", "1"]
        + [a for v in variants for a in ("--variant", v)]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("batch 2, 1 thread(s)")
    assert len(lines) == 3 and all("s/step" in line for line in lines[1:])
