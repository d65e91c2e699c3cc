"""Map pictures: what the PNG shows, bad grids refused, and the bounded cache."""

from __future__ import annotations

import asyncio
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from epic.central.render import MapPictures, PngCache, render_compare_png, render_map_png
from tests.central.fake_view import make_map


def _rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_slow_and_fast_rock_get_the_ends_of_viridis() -> None:
    detail = make_map("s1")
    detail.velocity = [[1500.0] * 70 for _ in range(35)] + [[4500.0] * 70 for _ in range(35)]
    pixels = _rgb(render_map_png(detail)).reshape(-1, 3).astype(int)
    # viridis runs from dark purple (68, 1, 84) to yellow (253, 231, 37).
    for colour in ((68, 1, 84), (253, 231, 37)):
        close = np.abs(pixels - colour).sum(axis=1) < 12
        assert close.sum() > 20_000, colour


def test_partial_maps_are_titled_in_red() -> None:
    full = _rgb(render_map_png(make_map("s2")))
    partial = _rgb(render_map_png(make_map("s2", missing=["dev-4"])))
    top = slice(0, 40)

    def reddish(img: np.ndarray) -> int:
        r, g, b = (img[top, :, i].astype(int) for i in range(3))
        return int(((r > 150) & (g < 80) & (b < 90)).sum())

    assert reddish(partial) > 50 and reddish(full) == 0


def test_renders_in_parallel_threads_give_the_same_picture() -> None:
    detail = make_map("s3", seed=5)
    with ThreadPoolExecutor(4) as pool:
        pictures = list(pool.map(lambda _: render_map_png(detail), range(4)))
    assert len(set(pictures)) == 1


def test_a_grid_that_is_not_2d_is_refused() -> None:
    detail = make_map("s4")
    detail.velocity = [[]]
    with pytest.raises(ValueError, match="non-empty 2-D"):
        render_map_png(detail)


def test_cache_evicts_the_least_recently_used() -> None:
    cache = PngCache(capacity=2)
    cache.put("a", 1, b"A")
    cache.put("b", 1, b"B")
    assert cache.get("a", 1) == b"A"  # "a" is now the most recent
    cache.put("c", 1, b"C")
    assert cache.get("b", 1) is None
    assert (cache.get("a", 1), cache.get("c", 1), len(cache)) == (b"A", b"C", 2)
    assert cache.get("a", 2) is None  # versions are separate pictures
    with pytest.raises(ValueError, match="capacity"):
        PngCache(capacity=0)


def test_pages_asking_at_once_share_one_render() -> None:
    pictures = MapPictures(capacity=4)
    detail = make_map("s5")

    async def ask() -> list[bytes]:
        async with asyncio.timeout(30):
            first = await asyncio.gather(*(pictures.png(detail) for _ in range(5)))
            # One asker leaving mid-render does not spoil the picture for the others.
            other = make_map("s5", version=2)
            leaver = asyncio.create_task(pictures.png(other))
            stayer = asyncio.create_task(pictures.png(other))
            await asyncio.sleep(0)
            leaver.cancel()
            return [*first, await stayer]

    pngs = asyncio.run(ask())
    assert len(set(pngs[:5])) == 1 and pngs[5] != pngs[0]
    assert pictures.renders == 2 and len(pictures.cache) == 2


def test_compare_sets_the_map_beside_its_reference_and_their_difference() -> None:
    detail = make_map("c1")
    same = np.asarray(detail.velocity, dtype=np.float32)
    png = render_compare_png(detail, same, "truth")
    image = _rgb(png)
    assert image.shape[1] > 3 * 210  # three 70-cell panels at 3 px a cell
    # A difference of zero is the middle of the diverging map: near white, the whole panel.
    panel = image[24:234, 16 + 2 * 226 : 16 + 2 * 226 + 210].reshape(-1, 3).astype(int)
    assert (np.abs(panel - 247).max(axis=1) < 12).mean() > 0.95
    faster = render_compare_png(detail, same - 800, "previous")
    red = _rgb(faster)[24:234, 16 + 2 * 226 : 16 + 2 * 226 + 210].reshape(-1, 3).astype(int)
    assert ((red[:, 0] > 150) & (red[:, 2] < 120)).mean() > 0.95  # faster than before: red
    with pytest.raises(ValueError, match="not the map's"):
        render_compare_png(detail, same[:10], "truth")
