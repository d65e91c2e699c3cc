"""What the API reads from the running service: the one seam between ``central/api.py``
(FastAPI routes, the page) and the service core (consumer, assembler, decoder, store).

The API never touches the database, the broker or the model directly; it asks a
``CentralView``, which may answer ``ServiceStarting`` while the service starts. The service
implements it; a unit test of the routes may implement it with plain data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import numpy as np
from prometheus_client import CollectorRegistry

from epic.central.schemas import DeviceHealth, Health, MapDetail, MapSummary


class ServiceStarting(Exception):
    """Raised by a view asked for what it does not have yet: the service is still starting
    (loading the model, profiling the decoder). The API answers 503 with ``stage``."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


class CentralView(Protocol):
    metrics: CollectorRegistry

    @property
    def deployment(self) -> str:
        """The deployment the centre serves (the bundle manifest's)."""

    async def latest_map(self) -> MapDetail | None:
        """The newest stored map (highest decode time), any sample."""

    async def get_map(self, sample_id: str, version: int | None = None) -> MapDetail | None:
        """A sample's map, its newest version unless ``version`` is given."""

    async def list_maps(self, limit: int, before: str | None = None) -> list[MapSummary]:
        """Newest first; ``before`` a sample id: only maps stored before that one's."""

    async def truth(self, sample_id: str) -> np.ndarray | None:
        """The sample's true map ``[nz, nx]`` in m/s where the source knows it (the demo's
        simulator), else None."""

    async def delete_map(self, sample_id: str) -> int:
        """Delete every version of a sample's map; how many there were (0: none)."""

    def devices(self) -> list[DeviceHealth]:
        """Every device of the manifest plus any other that spoke, manifest order first."""

    def health(self) -> Health: ...

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[dict]]:
        """Live events (``MapEvent``/``DeviceEvent`` as JSON-ready dicts) for one client.

        Bounded: a client that falls more than the queue behind is dropped (the iterator
        ends), never buffered without bound.
        """
