"""Real parts for the centre's tests: the shipped model deployed to a bundle, a tiny shot
pool made by the simulator, the edges' real encoders run on it, and envelopes packed with
``epic.shared.wire.envelope`` exactly as an edge packs them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import numpy as np
import pytest
import torch

from epic.shared.bundle import Manifest, load_edge_encoder, write_bundle
from epic.shared.data.normalization import Normalization
from epic.shared.pool import ShotPool, sample_id
from epic.shared.wire import Envelope, pack

ROOT = Path(__file__).resolve().parents[3]
FAMILY = "flatfault-a"
POOL_SIZE = 3


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "epic-lite-5"
    write_bundle(ROOT / "models" / "epic-lite-5.pt", out, "demo")
    return out


@pytest.fixture(scope="session")
def raw_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The centralized baseline: InversionNet, whose edges send raw blocks."""
    out = tmp_path_factory.mktemp("bundle") / "inversionnet"
    write_bundle(ROOT / "models" / "inversionnet-lite.pt", out, "central")
    return out


@pytest.fixture(scope="session")
def pool(tmp_path_factory: pytest.TempPathFactory) -> ShotPool:
    """Three simulated flatfault-a shots (about a second of deepwave)."""
    return ShotPool.open(FAMILY, size=POOL_SIZE, cache_dir=tmp_path_factory.mktemp("pool"))


@dataclass
class Feed:
    """Envelopes of real latents: ``payload(sample, device)`` is what that edge would send
    for pool slot ``sample`` (its id ``flatfault-a-<slot>``)."""

    manifest: Manifest
    latents: dict[str, list[np.ndarray]]  # device -> one latent per pool sample
    blocks: dict[str, list[np.ndarray]]  # device -> raw block per pool sample
    pool: ShotPool

    @property
    def deployment(self) -> str:
        return self.manifest.deployment

    @property
    def devices(self) -> list[str]:
        return self.manifest.device_ids

    def sample_id(self, slot: int) -> str:
        return sample_id(FAMILY, slot)

    def envelope(self, slot: int, device: str, acquired_ns: int | None = None, **kw) -> Envelope:
        fields = dict(
            deployment=self.deployment,
            sample_id=self.sample_id(slot),
            device_id=device,
            model_hash=self.manifest.model_hash,
            acquired_ns=time.time_ns() if acquired_ns is None else acquired_ns,
            encode_us=1500,
            data=self.latents[device][slot % POOL_SIZE],
        )
        fields.update(kw)
        return Envelope(**fields)

    def payload(self, slot: int, device: str, dtype: str = "int8", **kw) -> bytes:
        return pack(self.envelope(slot, device, **kw), dtype)

    def topic(self, slot: int | str, device: str, kind: str = "latent") -> str:
        sid = self.sample_id(slot) if isinstance(slot, int) else slot
        return f"epic/{self.deployment}/{kind}/{sid}/{device}"

    def message(self, slot: int, device: str, **kw) -> tuple[str, bytes]:
        return self.topic(slot, device), self.payload(slot, device, **kw)


def _feed(bundle: Path, pool: ShotPool) -> Feed:
    latents: dict[str, list[np.ndarray]] = {}
    blocks: dict[str, list[np.ndarray]] = {}
    manifest = None
    for device in _device_ids(bundle):
        manifest, encoder = load_edge_encoder(bundle, device)
        norm = Normalization.from_dict(manifest.config["normalization"])
        entry = manifest.device(device)
        blocks[device] = [pool.waveforms(i, entry.receivers) for i in range(len(pool))]
        with torch.inference_mode():
            latents[device] = [
                encoder(norm.data(torch.from_numpy(b))[None])[0].numpy() for b in blocks[device]
            ]
    assert manifest is not None
    return Feed(manifest, latents, blocks, pool)


def _device_ids(bundle: Path) -> list[str]:
    from epic.shared.bundle import load_manifest

    return load_manifest(bundle).device_ids


@pytest.fixture(scope="session")
def feed(bundle: Path, pool: ShotPool) -> Feed:
    return _feed(bundle, pool)


@pytest.fixture(scope="session")
def raw_feed(raw_bundle: Path, pool: ShotPool) -> Feed:
    return _feed(raw_bundle, pool)


def client(url: str, name: str) -> aiomqtt.Client:
    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    return aiomqtt.Client(host, int(port), identifier=name)


async def publish(url: str, messages: Iterable[tuple[str, bytes]], retain: bool = False) -> None:
    """Publish at QoS 1, in order, as one client."""
    async with asyncio.timeout(30), client(url, "test-publisher") as c:
        for topic, payload in messages:
            await c.publish(topic, payload, qos=1, retain=retain)


@pytest.fixture
def settings_for(tmp_path: Path) -> Callable[..., object]:
    """``settings_for(bundle, broker_url, **overrides)``: fast settings for a test service."""
    from epic.central.settings import CentralSettings

    def make(bundle: Path, broker: str, **overrides: object) -> CentralSettings:
        values: dict[str, object] = dict(
            bundle=bundle,
            broker=broker,
            db=tmp_path / "central.sqlite",
            port=0,
            deadline_ms=1500,
            threads=1,
            client_id=f"central-{tmp_path.name}",
        )
        values.update(overrides)
        return CentralSettings(**values)

    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store keeps its tables: a SQLite file, then a database of its own on the
    session's real PostgreSQL server (``tests.support.postgres``)."""
    if request.param == "sqlite":
        return str(tmp_path / "c.sqlite")
    return str(request.getfixturevalue("postgres_url"))
