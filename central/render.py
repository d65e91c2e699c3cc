"""Velocity maps as PNG pictures for people, and a small cache of the pictures already drawn.

Drawing uses ``matplotlib.figure.Figure`` with its own Agg canvas, never ``pyplot``: pyplot keeps
global figure state that is not safe across the worker threads the API renders in.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections import OrderedDict
from functools import partial

import numpy as np

from central.schemas import MapDetail
from shared.geometry import CONTRACT, Geometry

__all__ = ["MapPictures", "PngCache", "render_map_png"]

# Perceptually uniform, readable in greyscale and by colour-blind eyes, unlike 'jet'.
COLOUR_MAP = "viridis"

# One picture at a time: matplotlib's text stack is not documented as thread-safe, and the
# centre's spare cores belong to the decoder anyway.
_RENDER_LOCK = threading.Lock()


def render_map_png(detail: MapDetail, geometry: Geometry = CONTRACT) -> bytes:
    """The map as a PNG: depth down in metres, a colour bar in m/s on the contract's fixed
    range (so two maps' colours mean the same speed), titled with sample, version and
    whether devices were missing. CPU work: call it from a worker thread."""
    velocity = np.asarray(detail.velocity, dtype=np.float32)
    if velocity.ndim != 2 or 0 in velocity.shape:
        raise ValueError(f"velocity must be a non-empty 2-D grid, got shape {velocity.shape}")
    nz, nx = velocity.shape
    spacing = geometry.spacing_m
    title = f"{detail.sample_id}  ·  v{detail.version}"
    if detail.partial:
        missing = ", ".join(detail.devices_missing) or "?"
        title += f"  ·  PARTIAL (missing {missing})"
    # matplotlib is imported at the first picture, not with the API: it costs the centre's
    # start-up most of a second, before its port answers.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _RENDER_LOCK:
        fig = Figure(figsize=(6.4, 5.4), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        image = ax.imshow(
            velocity,
            cmap=COLOUR_MAP,
            vmin=geometry.v_min,
            vmax=geometry.v_max,
            extent=(0, nx * spacing, nz * spacing, 0),
            interpolation="nearest",
        )
        ax.set_xlabel("distance (m)")
        ax.set_ylabel("depth (m)")
        ax.set_title(title, fontsize=11, color="#b00020" if detail.partial else "black")
        bar = fig.colorbar(image, ax=ax, shrink=0.9)
        bar.set_label("velocity (m/s)")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    return buffer.getvalue()


class PngCache:
    """Rendered pictures by (sample id, version), least recently used evicted first.

    A (sample, version) never changes once stored, so its picture never goes stale.
    Thread-safe, so renders finishing in worker threads may store their result.
    """

    def __init__(self, capacity: int = 64) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity}: must be >= 1")
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sample_id: str, version: int) -> bytes | None:
        with self._lock:
            png = self._items.get((sample_id, version))
            if png is not None:
                self._items.move_to_end((sample_id, version))
            return png

    def put(self, sample_id: str, version: int, png: bytes) -> None:
        with self._lock:
            self._items[(sample_id, version)] = png
            self._items.move_to_end((sample_id, version))
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class MapPictures:
    """The API's pictures: each (sample, version) rendered once, in a worker thread, however
    many pages ask for it at the same moment (they all do, when a new map arrives)."""

    def __init__(self, capacity: int = 64) -> None:
        self.cache = PngCache(capacity)
        self.renders = 0  # pictures actually drawn, for tests and curiosity
        self._pending: dict[tuple[str, int], asyncio.Task[bytes]] = {}

    async def png(self, detail: MapDetail) -> bytes:
        key = (detail.sample_id, detail.version)
        if (png := self.cache.get(*key)) is not None:
            return png
        task = self._pending.get(key)
        if task is None:
            self.renders += 1
            task = asyncio.create_task(
                asyncio.to_thread(render_map_png, detail), name=f"render-{key[0]}-v{key[1]}"
            )
            self._pending[key] = task
            task.add_done_callback(partial(self._done, key))
        # Shielded: a client leaving mid-render must not cancel a picture others wait for.
        return await asyncio.shield(task)

    def _done(self, key: tuple[str, int], task: asyncio.Task[bytes]) -> None:
        self._pending.pop(key, None)
        if not task.cancelled() and task.exception() is None:
            self.cache.put(*key, task.result())
