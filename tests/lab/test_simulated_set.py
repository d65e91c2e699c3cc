"""Training data simulated on the compute device: sources, budget, split, batches."""

import numpy as np
import pytest
import torch

from epic.lab.train.simulated_set import (
    MapSource,
    TensorSet,
    _chunks,
    _generate,
    map_sources,
    simulate_split,
)
from epic.shared.errors import ConfigError
from epic.shared.physics.families import generate_batch
from epic.shared.physics.forward import simulate_shots


def test_generated_maps_do_not_depend_on_the_worker_split():
    np.testing.assert_array_equal(
        _generate("flatvel-a", 5, 9, per_task=4), generate_batch("flatvel-a", 5, 0, 9)
    )


def test_real_sources_come_whole_and_first_then_families_round_robin():
    maps = np.zeros((5, 1, 70, 70), np.float32)
    sources = [
        MapSource("a", maps[:3], generated=True),
        MapSource("real", maps),
        MapSource("b", maps[:5], generated=True),
    ]
    order = list(_chunks(sources, 2))
    assert order[:3] == [(1, 0, 2), (1, 2, 4), (1, 4, 5)]
    assert order[3:] == [(0, 0, 2), (2, 0, 2), (0, 2, 3), (2, 2, 4), (2, 4, 5)]


def test_unknown_family_and_tiny_counts_name_the_option():
    with pytest.raises(ConfigError, match="choose from") as caught:
        map_sources([], {"flatvel-z": 4}, 0)
    assert caught.value.option == "--family"
    with pytest.raises(ConfigError, match="at least 2"):
        map_sources([], {"flatvel-a": 1}, 0)


def test_maps_limit_reads_only_the_first_maps(tmp_path):
    np.save(tmp_path / "model1.npy", generate_batch("flatvel-a", 0, 0, 3))
    np.save(tmp_path / "model2.npy", generate_batch("flatvel-a", 0, 3, 3))
    (source,) = map_sources([tmp_path], {}, 0, limit=4)
    np.testing.assert_array_equal(source.maps, generate_batch("flatvel-a", 0, 0, 4))


@pytest.fixture(scope="module")
def split():
    sources = map_sources([], {"flatvel-a": 3, "curvevel-a": 2}, 0)
    result = simulate_split(sources, 0.3, 0, torch.device("cpu"), progress=False, log=print)
    return sources, result


def test_split_holds_out_a_share_of_every_source_and_matches_deepwave(split):
    sources, result = split
    assert result.val_per_folder == [1, 1]
    assert (len(result.train), len(result.val)) == (3, 2)
    assert [s["maps"] for s in result.sources] == [3, 2]
    every = torch.cat([result.train.velocity, result.val.velocity])
    maps = np.concatenate([s.maps for s in sources])
    for m in maps:  # every map exactly once, in one half or the other
        assert sum(torch.equal(v, torch.from_numpy(m)) for v in every) == 1
    data = torch.cat([result.train.data, result.val.data])
    reference = simulate_shots(every.numpy())
    error = (data - reference).flatten(1).norm(dim=1) / reference.flatten(1).norm(dim=1)
    assert float(error.max()) < 0.01


def test_a_budget_cuts_generated_families_only():
    sources = [MapSource("real", generate_batch("flatvel-a", 0, 0, 2))]
    sources.append(MapSource("gen", generate_batch("curvevel-a", 0, 0, 6), generated=True))
    logged = []
    result = simulate_split(
        sources,
        0.5,
        0,
        torch.device("cpu"),
        chunk=2,
        minutes=1e-9,
        progress=False,
        log=logged.append,
    )
    assert [s["maps"] for s in result.sources] == [2, 2]
    assert "cut to gen 2" in logged[0]


def test_batches_follow_the_order():
    data, velocity = torch.arange(5.0)[:, None], torch.arange(5.0)[:, None] * 10
    batches = list(TensorSet(data, velocity).batches([4, 0, 3, 1, 2], 2, drop_last=True))
    assert [b[0].flatten().tolist() for b in batches] == [[4.0, 0.0], [3.0, 1.0]]
    assert batches[0][1].flatten().tolist() == [40.0, 0.0]
