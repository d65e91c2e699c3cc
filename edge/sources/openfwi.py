"""``openfwi:DIR``: replay an OpenFWI-layout folder, every sample once, in file order.

Sample ids are ``<folder>-<file stem>-<index>`` (e.g. ``flatfault-data1-3``; characters
outside ``[A-Za-z0-9_.-]`` become ``_`` and the folder part is shortened to fit 64), so every
device replaying the same folder names a sample alike. Velocity comes from the model file.
At ``rate`` Hz the shots are spaced one slot apart from the next slot boundary; ``rate 0``
replays as fast as the device encodes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from epic.edge.sources.base import Clock, Pacer, Shot, Slot, Source, safe_id_part
from epic.shared.data.layout import FilePair, discover_pairs, open_pair
from epic.shared.errors import DataError

__all__ = ["OpenFWISource"]

_ID_LIMIT = 64


class OpenFWISource(Source):
    def __init__(
        self,
        root: Path | str,
        receivers: tuple[int, int],
        rate: float,
        *,
        clock: Clock = time.time_ns,
    ) -> None:
        root = Path(root)
        self.spec = f"openfwi:{root}"
        self.receivers = receivers
        self.rate = rate
        self.skipped = 0
        self._clock = clock
        self._files: list[tuple[FilePair, np.ndarray, np.ndarray]] = []
        for pair in discover_pairs(root):
            data, model = open_pair(pair)
            self._files.append((pair, data, model))
        self._prefix = root.resolve().name

    def __len__(self) -> int:
        return sum(len(data) for _, data, _ in self._files)

    def sample_id(self, file: int, index: int) -> str:
        stem = safe_id_part(self._files[file][0].data.stem, 24)
        tail = f"-{stem}-{index}"
        return safe_id_part(self._prefix, 64 - len(tail)) + tail

    def slots(self) -> Iterator[Slot]:
        pacer = Pacer(self.rate, self._clock)
        for f, (_, data, _) in enumerate(self._files):
            for i in range(len(data)):
                yield Slot(self.sample_id(f, i), pacer.next_due(), (f, i))

    def read(self, slot: Slot) -> Shot:
        f, i = slot.key
        pair, data, model = self._files[f]
        a, b = self.receivers
        block = np.array(data[i, :, :, a:b], dtype=np.float32)
        if not np.isfinite(block).all():
            raise DataError(pair.data, f"sample {i} holds NaN or infinite amplitudes")
        return Shot(
            sample_id=slot.sample_id,
            acquired_ns=self._acquired(slot),
            waveforms=block,
            velocity=np.array(model[i, 0], dtype=np.float32),
            receivers=self.receivers,
        )

    def describe(self) -> dict[str, Any]:
        return {"spec": self.spec, "rate_hz": self.rate, "samples": len(self)}
