"""Which deployments an HTTP process serves, and a view of each (``epic.central.view``).

A centre serves one: its own (``OneDeployment``). An ``epic api`` process serves every
deployment in the database (``epic.central.stored_view.StoredDeployments``). The API asks
this seam, never the database.
"""

from __future__ import annotations

import abc

from prometheus_client import CollectorRegistry

from epic.central.schemas import DeploymentSummary
from epic.central.view import CentralView, ServiceStarting

__all__ = ["Deployments", "OneDeployment", "UnknownDeployment"]


class UnknownDeployment(LookupError):
    """No such deployment here; ``known`` lists those there are."""

    def __init__(self, name: str | None, known: list[str]) -> None:
        shown = ", ".join(known) or "none yet"
        if name is None:
            why = f"this API serves {len(known)} deployments ({shown}): name one, as "
            why += "/api/deployments/{deployment}/..."
        else:
            why = f"no deployment {name!r} here (known: {shown})"
        super().__init__(why)
        self.name, self.known = name, known


class Deployments(abc.ABC):
    metrics: CollectorRegistry

    @abc.abstractmethod
    def names(self) -> list[str]:
        """Every deployment served, in a stable order."""

    @abc.abstractmethod
    def view(self, name: str) -> CentralView:
        """The deployment's view; ``UnknownDeployment`` if there is none of that name."""

    def default(self) -> CentralView:
        """The view behind the paths that name no deployment (``/api/maps``...): the only
        one. ``UnknownDeployment`` when there are several (or none)."""
        names = self.names()
        if len(names) != 1:
            raise UnknownDeployment(None, names)
        return self.view(names[0])

    @abc.abstractmethod
    async def summaries(self) -> list[DeploymentSummary]:
        """One line per deployment, for the picker."""


class OneDeployment(Deployments):
    """A centre's own deployment."""

    def __init__(self, view: CentralView) -> None:
        self._view = view
        self.metrics = view.metrics

    def names(self) -> list[str]:
        return [self._view.deployment]

    def view(self, name: str) -> CentralView:
        if name != self._view.deployment:
            raise UnknownDeployment(name, self.names())
        return self._view

    async def summaries(self) -> list[DeploymentSummary]:
        v = self._view
        try:
            health, devices = v.health(), v.devices()
        except ServiceStarting as exc:
            return [DeploymentSummary(deployment=v.deployment, status=exc.stage)]
        latest = await v.latest_map()
        return [
            DeploymentSummary(
                deployment=v.deployment,
                status=health.status,
                maps_stored=health.maps_stored,
                latest_sample_id=None if latest is None else latest.sample_id,
                latest_stored_ns=None if latest is None else latest.timings.stored_ns,
                devices=len(devices),
                devices_online=sum(d.online for d in devices),
            )
        ]
