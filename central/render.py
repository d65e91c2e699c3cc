"""Velocity maps as PNG pictures for people, and a small cache of the pictures already drawn.

Pictures are drawn with Pillow from matplotlib's colour table (matplotlib's own figures took
about 300 ms each); the API draws them in a process of its own (``MapPictures``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import multiprocessing
import os
import threading
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from epic.central.schemas import MapDetail
from epic.shared.geometry import CONTRACT, Geometry

__all__ = ["MapPictures", "PngCache", "render_compare_png", "render_map_png"]

# Perceptually uniform, readable in greyscale and by colour-blind eyes, unlike 'jet'.
COLOUR_MAP = "viridis"
# Differences: diverging, white at zero, red where the map is faster than its reference.
DIFFERENCE_MAP = "RdBu_r"
DIFFERENCE_SPAN = 1000.0  # m/s either way: a fixed scale, so colours mean the same each map

# The render process's CPU priority: below the decoder and the event loop (0).
RENDER_NICENESS = 10

SCALE = 6  # screen pixels per grid cell: 70 cells -> 420 px
INK, GRID_INK, PARTIAL_INK = (30, 30, 30), (120, 120, 120), (176, 0, 32)


@functools.cache
def _lut(name: str = COLOUR_MAP) -> np.ndarray:
    """A colour map as 256 RGB bytes (matplotlib's table, read once)."""
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


@functools.cache
def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font
    except TypeError:
        return ImageFont.load_default()


def _colour(values: np.ndarray, lo: float, hi: float, name: str = COLOUR_MAP) -> np.ndarray:
    index = np.clip((values - lo) / (hi - lo) * 255, 0, 255).round().astype(np.uint8)
    return _lut(name)[index]


def _vertical_text(image: Any, text: str, centre: tuple[int, int], font: Any) -> None:
    from PIL import Image, ImageDraw

    box = ImageDraw.Draw(image).textbbox((0, 0), text, font=font)
    label = Image.new("RGB", (int(box[2]) + 2, int(box[3]) + 2), "white")
    ImageDraw.Draw(label).text((1, 1), text, fill=INK, font=font)
    label = label.rotate(90, expand=True)
    image.paste(label, (centre[0] - label.width // 2, centre[1] - label.height // 2))


def render_map_png(detail: MapDetail, geometry: Geometry = CONTRACT) -> bytes:
    """The map as a PNG: depth down in metres, a colour bar in m/s on the contract's fixed
    range (so two maps' colours mean the same speed), titled with sample, version and
    whether devices were missing.

    Drawn with Pillow, cell by cell, in a few milliseconds: matplotlib took about 300 ms a
    picture, and a monitor asks for one with every map."""
    from PIL import Image, ImageDraw

    velocity = np.asarray(detail.velocity, dtype=np.float32)
    if velocity.ndim != 2 or 0 in velocity.shape:
        raise ValueError(f"velocity must be a non-empty 2-D grid, got shape {velocity.shape}")
    nz, nx = velocity.shape
    spacing = geometry.spacing_m
    title = f"{detail.sample_id}  ·  v{detail.version}"
    if detail.partial:
        missing = ", ".join(detail.devices_missing) or "?"
        title += f"  ·  PARTIAL (missing {missing})"
    width_px, height_px = nx * SCALE, nz * SCALE
    left, top, bar_gap, bar_w = 70, 40, 24, 22
    canvas = Image.new(
        "RGB", (left + width_px + bar_gap + bar_w + 90, top + height_px + 60), "white"
    )
    draw = ImageDraw.Draw(canvas)
    font, small = _font(15), _font(13)
    draw.text((left, 10), title, fill=PARTIAL_INK if detail.partial else INK, font=font)

    cells = _colour(velocity, geometry.v_min, geometry.v_max)  # [nz, nx, 3]
    picture = np.repeat(np.repeat(cells, SCALE, axis=0), SCALE, axis=1)
    canvas.paste(Image.fromarray(picture), (left, top))
    draw.rectangle((left - 1, top - 1, left + width_px, top + height_px), outline=INK)

    # Axes in metres: a tick every 100 m (or every tenth of the extent, if larger).
    for extent, cells_n, horizontal in ((nx * spacing, nx, True), (nz * spacing, nz, False)):
        step = max(100.0, 10 ** np.floor(np.log10(extent)) / 2)
        for metres in np.arange(0, extent + 1e-6, step):
            at = round(metres / (cells_n * spacing) * (width_px if horizontal else height_px))
            label = f"{metres:.0f}"
            if horizontal:
                x, y = left + at, top + height_px
                draw.line((x, y, x, y + 5), fill=INK)
                draw.text((x, y + 7), label, fill=INK, font=small, anchor="ma")
            else:
                x, y = left, top + at
                draw.line((x - 5, y, x, y), fill=INK)
                draw.text((x - 8, y), label, fill=INK, font=small, anchor="rm")
    draw.text(
        (left + width_px // 2, top + height_px + 28),
        "distance (m)",
        fill=INK,
        font=small,
        anchor="ma",
    )
    _vertical_text(canvas, "depth (m)", (16, top + height_px // 2), small)

    # The colour bar: the contract's range, slow at the bottom, with a tick every 500 m/s.
    bar_x = left + width_px + bar_gap
    ramp = np.linspace(geometry.v_max, geometry.v_min, height_px)[:, None].repeat(bar_w, 1)
    canvas.paste(Image.fromarray(_colour(ramp, geometry.v_min, geometry.v_max)), (bar_x, top))
    draw.rectangle((bar_x - 1, top - 1, bar_x + bar_w, top + height_px), outline=INK)
    span = geometry.v_max - geometry.v_min
    for v in np.arange(np.ceil(geometry.v_min / 500) * 500, geometry.v_max + 1e-6, 500):
        y = top + round((geometry.v_max - v) / span * (height_px - 1))
        draw.line((bar_x + bar_w, y, bar_x + bar_w + 5, y), fill=INK)
        draw.text((bar_x + bar_w + 8, y), f"{v:.0f}", fill=INK, font=small, anchor="lm")
    _vertical_text(canvas, "velocity (m/s)", (bar_x + bar_w + 58, top + height_px // 2), small)

    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", compress_level=3)  # fast; the picture is small anyway
    return buffer.getvalue()


def _grid(values: ArrayLike, what: str) -> np.ndarray:
    grid = np.asarray(values, dtype=np.float32)
    if grid.ndim != 2 or 0 in grid.shape:
        raise ValueError(f"{what} must be a non-empty 2-D grid, got shape {grid.shape}")
    return grid


def render_compare_png(
    detail: MapDetail, reference: np.ndarray, kind: str, geometry: Geometry = CONTRACT
) -> bytes:
    """Three small panels side by side: ``reference``, the map, and the map minus the
    reference. ``kind`` names the reference: ``"truth"`` (where the source knows it: the
    demo) or ``"previous"`` (the map stored before this one: in the field, what changed).

    Velocities share the contract's fixed colour range, the difference a fixed +-1,000 m/s
    diverging one, so two pictures' colours mean the same."""
    from PIL import Image, ImageDraw

    velocity = _grid(detail.velocity, "velocity")
    reference = _grid(reference, "reference")
    if reference.shape != velocity.shape:
        raise ValueError(f"reference {reference.shape} is not the map's {velocity.shape}")
    scale = 3  # 70 cells -> 210 px a panel
    nz, nx = velocity.shape
    w, h = nx * scale, nz * scale
    gap, top, bottom = 16, 24, 74
    canvas = Image.new("RGB", (3 * w + 4 * gap, top + h + bottom), "white")
    draw = ImageDraw.Draw(canvas)
    font, small = _font(13), _font(11)
    difference = velocity - reference
    names = (
        ("truth", "decoded", "decoded - truth")
        if kind == "truth"
        else ("previous", "this map", "this - previous")
    )
    panels = [
        _colour(reference, geometry.v_min, geometry.v_max),
        _colour(velocity, geometry.v_min, geometry.v_max),
        _colour(difference, -DIFFERENCE_SPAN, DIFFERENCE_SPAN, DIFFERENCE_MAP),
    ]
    for i, (name, cells) in enumerate(zip(names, panels, strict=True)):
        x = gap + i * (w + gap)
        canvas.paste(Image.fromarray(np.repeat(np.repeat(cells, scale, 0), scale, 1)), (x, top))
        draw.rectangle((x - 1, top - 1, x + w, top + h), outline=INK)
        draw.text((x + w // 2, 5), name, fill=INK, font=font, anchor="ma")
    # A colour bar under the velocity panels and one under the difference.
    bar_y, bar_h = top + h + 10, 10
    for x0, x1, lo, hi, cmap, unit in (
        (gap, 2 * w + gap * 2, geometry.v_min, geometry.v_max, COLOUR_MAP, "m/s"),
        (
            gap + 2 * (w + gap),
            3 * w + 3 * gap,
            -DIFFERENCE_SPAN,
            DIFFERENCE_SPAN,
            DIFFERENCE_MAP,
            "m/s",
        ),
    ):
        ramp = np.linspace(lo, hi, x1 - x0)[None, :].repeat(bar_h, 0)
        canvas.paste(Image.fromarray(_colour(ramp, lo, hi, cmap)), (x0, bar_y))
        draw.rectangle((x0 - 1, bar_y - 1, x1, bar_y + bar_h), outline=INK)
        for value, anchor in ((lo, "la"), ((lo + hi) / 2, "ma"), (hi, "ra")):
            at = x0 + round((value - lo) / (hi - lo) * (x1 - x0))
            text = f"{value:+.0f}" if lo < 0 else f"{value:.0f}"
            draw.text((at, bar_y + bar_h + 3), text, fill=INK, font=small, anchor=anchor)
        draw.text(((x0 + x1) // 2, bar_y + bar_h + 18), unit, fill=INK, font=small, anchor="ma")
    mae = f"mean |difference| {float(np.abs(difference).mean()):.0f} m/s"
    draw.text(
        (gap + 2 * (w + gap) + w // 2, bar_y + bar_h + 34), mae, fill=INK, font=small, anchor="ma"
    )
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


class PngCache:
    """Rendered pictures by key (sample id, version, and what else went into the picture),
    least recently used evicted first.

    A (sample, version) never changes once stored, so its picture never goes stale.
    Thread-safe, so renders finishing in worker threads may store their result.
    """

    def __init__(self, capacity: int = 64) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity}: must be >= 1")
        self.capacity = capacity
        self._items: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sample_id: str, version: int, *extra: object) -> bytes | None:
        key = (sample_id, version, *extra)
        with self._lock:
            png = self._items.get(key)
            if png is not None:
                self._items.move_to_end(key)
            return png

    def put(self, sample_id: str, version: int, png: bytes, *extra: object) -> None:
        key = (sample_id, version, *extra)
        with self._lock:
            self._items[key] = png
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def _lower_priority(niceness: int = RENDER_NICENESS) -> None:
    """Run the render process at a lower CPU priority, where the OS allows it."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, 0, niceness)


class MapPictures:
    """The API's pictures: each (sample, version) rendered once, however many pages ask for
    it at the same moment (they all do, when a new map arrives).

    Pictures are drawn in a process of their own (started at the first picture), at a lower
    CPU priority (nice ``RENDER_NICENESS``), so they never share the decoder's threads nor
    its GIL. In a thread, with matplotlib's 300 ms figures, a monitor and 10 PNGs a second
    put the decode p95 at 5.2x its idle value; in a process, 1.8x; with Pillow's 10 ms
    pictures as well, about 1.5x (``lab/bench/monitor_load.py``, docs/benchmarks.md)."""

    def __init__(self, capacity: int = 64) -> None:
        self.cache = PngCache(capacity)
        self.renders = 0  # pictures actually drawn, for tests and curiosity
        self._pending: dict[tuple, asyncio.Future[bytes]] = {}
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the centre's process holds threads (decoder, torch, broker
            # client) that a forked child would inherit mid-flight.
            self._pool = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), initializer=_lower_priority
            )
        return self._pool

    def close(self) -> None:
        """Stop the render process (pictures asked for later start a new one)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def _render(self, draw: Any, *args: Any) -> bytes:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), draw, *args)
        except BrokenProcessPool:  # the render process died: a new one for the next picture
            self._pool = None
            raise

    async def png(self, detail: MapDetail) -> bytes:
        """The map's picture (``render_map_png``)."""
        return await self._picture((detail.sample_id, detail.version), render_map_png, detail)

    async def compare_png(
        self, detail: MapDetail, reference: np.ndarray, kind: str, reference_key: str
    ) -> bytes:
        """The map beside its reference (``render_compare_png``); ``reference_key`` names
        the reference (``"truth"``, or the previous map's id and version) for the cache."""
        key = (detail.sample_id, detail.version, "compare", reference_key)
        return await self._picture(key, render_compare_png, detail, reference, kind)

    async def _picture(self, key: tuple, draw: Any, *args: Any) -> bytes:
        if (png := self.cache.get(*key)) is not None:
            return png
        task = self._pending.get(key)
        if task is None:
            self.renders += 1
            task = asyncio.ensure_future(self._render(draw, *args))
            self._pending[key] = task
            task.add_done_callback(partial(self._done, key))
        # Shielded: a client leaving mid-render must not cancel a picture others wait for.
        return await asyncio.shield(task)

    def _done(self, key: tuple, task: asyncio.Future[bytes]) -> None:
        self._pending.pop(key, None)
        if not task.cancelled() and task.exception() is None:
            self.cache.put(key[0], key[1], task.result(), *key[2:])
