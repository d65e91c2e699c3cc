"""The A families look like real OpenFWI maps on the statistics that matter.

Reads the user's copy of OpenFWI from ``../shared/openfwi/`` (next to the repository, never
inside it: OpenFWI is CC BY-NC-SA) and skips when it is absent. Real maps are the held-out
``*-test11`` files, used here only for summary statistics.
"""

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from epic.shared.physics.families import generate_batch
from epic.shared.physics.families.statistics import read_zipped_maps, summarize

OPENFWI = Path(__file__).resolve().parents[2].parent / "shared" / "openfwi"
REAL = {
    "flatvel-a": "FlatVelA-test11.zip",
    "curvevel-a": "CurveVelA-test11.zip",
    "flatfault-a": "FlatFaultA-test11.zip",
}
N = 150  # maps per side: the means below move by well under half their tolerance at 150

# Tolerances, absolute unless named relative. Each is about twice the spread of the
# generated mean over seeds at N maps plus the remaining, accepted gap to the real family.
LAYERS_TOL = 0.5  # layers per map; the generators stop at 7 layers, real FlatVel-A has 8 at times
THICKNESS_TOL = 2.0  # cells
VELOCITY_TOL = 200.0  # m/s, mean of the top, middle, bottom rows and of each map's range
STEP_TOL = 0.25  # relative: median velocity jump at an interface, a skewed quantity
RISING_TOL = 0.08  # fraction of interfaces; real FlatFault-A's over/undershoots at faults
# read as a few falling steps (0.93), the generator's layers always rise (0.98)
RELIEF_TOL = 3.0  # cells, fold height (CurveVel) or fault offset (FlatFault)
TURNS_TOL = 1.0  # bends of the first interface across the line
LATERAL_TOL = 0.015  # fraction of cells with a lateral step
BROKEN_ROWS_TOL = 0.1  # fraction of rows not constant along the line
JUMPS_TOL = 0.5  # lateral steps per broken row
WIDTH_TOL = 0.3  # rows per interface: 1 when sharp, about 2.6 when anti-aliased (FlatFault)
TV_TOL = 0.15  # relative: total variation, m/s per cell

ABSOLUTE = {
    "layers": LAYERS_TOL,
    "thickness": THICKNESS_TOL,
    "v_top": VELOCITY_TOL,
    "v_mid": VELOCITY_TOL,
    "v_bottom": VELOCITY_TOL,
    "v_range": VELOCITY_TOL,
    "rising": RISING_TOL,
    "relief": RELIEF_TOL,
    "turns": TURNS_TOL,
    "lateral": LATERAL_TOL,
    "broken_rows": BROKEN_ROWS_TOL,
    "jumps_per_row": JUMPS_TOL,
    "width": WIDTH_TOL,
}
RELATIVE = {"step": STEP_TOL, "tv": TV_TOL}


@cache
def real_statistics(family: str) -> dict[str, float]:
    path = OPENFWI / REAL[family]
    if not path.exists():
        pytest.skip(f"real OpenFWI maps not found at {path} (bring your own copy of OpenFWI)")
    return summarize(read_zipped_maps(path, N))


@pytest.mark.parametrize("family", list(REAL))
def test_generated_family_matches_real_openfwi(family):
    real = real_statistics(family)
    generated = summarize(generate_batch(family, seed=0, start=0, count=N))
    misses = []
    for name, tol in ABSOLUTE.items():
        if abs(generated[name] - real[name]) > tol:
            misses.append(f"{name}: generated {generated[name]:.3f}, real {real[name]:.3f} ± {tol}")
    for name, tol in RELATIVE.items():
        if abs(generated[name] - real[name]) > tol * abs(real[name]):
            misses.append(
                f"{name}: generated {generated[name]:.3f}, real {real[name]:.3f} ± {tol:.0%}"
            )
    assert not misses, f"{family} differs from real OpenFWI:\n" + "\n".join(misses)


def test_reader_reads_zip_in_natural_order(tmp_path):
    import zipfile

    maps = {k: np.full((2, 1, 70, 70), 1500.0 + k, np.float32) for k in (1, 2, 10)}
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as archive:
        for k, m in maps.items():
            with archive.open(f"vmodel{k}.npy", "w") as handle:
                np.save(handle, m)
    got = read_zipped_maps(tmp_path / "x.zip", 5)
    assert got.shape == (5, 1, 70, 70) and got.dtype == np.float32
    np.testing.assert_array_equal(got[:, 0, 0, 0], [1501, 1501, 1502, 1502, 1510])
