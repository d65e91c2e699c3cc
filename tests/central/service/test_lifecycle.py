"""The centre's parts exist from the step of ``start()`` that builds them: None before, and
``stop()`` closes only what exists (as ``epic.edge.daemon`` does)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from epic.central.service import CentralService
from epic.central.settings import CentralSettings
from epic.shared.errors import UserError

PARTS = (
    "manifest",
    "http",
    "registry",
    "store",
    "decoder",
    "assembler",
    "pending",
    "pipeline",
    "consumer",
)


def test_a_service_never_started_stops_cleanly(tmp_path: Path) -> None:
    service = CentralService(CentralSettings(bundle=tmp_path, port=0))
    assert all(getattr(service, part) is None for part in PARTS)
    asyncio.run(service.stop())


def test_a_start_that_fails_at_its_first_step_leaves_nothing_open(tmp_path: Path) -> None:
    async def scenario() -> CentralService:
        service = CentralService(CentralSettings(bundle=tmp_path / "none", port=0))
        with pytest.raises(UserError, match="no such folder"):
            async with service:
                pass
        return service

    service = asyncio.run(scenario())
    assert all(getattr(service, part) is None for part in PARTS)
