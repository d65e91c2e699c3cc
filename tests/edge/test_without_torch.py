"""An edge that runs its encoder with onnxruntime never imports PyTorch.

A field device can then run ``epic edge`` without torch's memory. The edge runs as a real
process under an import hook that refuses torch (and deepwave): any import of either, however
indirect, fails the process, so the test fails. Its latents must still be the model's own.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from epic.shared.pool import ShotPool
from epic.shared.wire import unpack
from tests.edge.conftest import REPO, subscriber
from tests.edge.test_daemon import SUB_QOS, assert_int8_close
from tests.edge.test_encoder_runtime import reference_latent
from tests.support.brokers import BrokerProcess

pytestmark = pytest.mark.slow

NO_TORCH = """
import runpy, sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "deepwave"):
            raise ImportError(f"{name} imported by an onnxruntime edge")

sys.meta_path.insert(0, Refuse())
sys.argv = ["epic", *sys.argv[1:]]
runpy.run_module("epic", run_name="__main__")
"""


def openfwi_folder(pool: ShotPool, root: Path) -> Path:
    """The pool's shots as an OpenFWI-layout folder (``data/`` and ``model/``)."""
    (root / "data").mkdir(parents=True)
    (root / "model").mkdir()
    np.save(root / "data" / "data1.npy", np.stack([pool.waveforms(i) for i in range(len(pool))]))
    maps = np.stack([pool.velocity(i) for i in range(len(pool))])
    maps = maps.reshape(len(pool), 1, *maps.shape[-2:])
    np.save(root / "model" / "model1.npy", maps)
    return root


def test_onnx_edge_runs_without_torch(
    embedded_broker: BrokerProcess,
    bundle: Path,
    pool: ShotPool,
    full_model: Any,
    tmp_path: Path,
) -> None:
    folder = openfwi_folder(pool, tmp_path / "shots")
    script = tmp_path / "no_torch.py"
    script.write_text(NO_TORCH)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    async def scenario() -> tuple[list[bytes], int, str]:
        async with subscriber(embedded_broker.host, embedded_broker.port) as sub:
            await sub.subscribe("epic/edgetest/latent/#", qos=SUB_QOS)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(script),
                "edge",
                "--bundle",
                str(bundle),
                "--device-id",
                "dev-2",
                "--broker",
                embedded_broker.url,
                "--source",
                f"openfwi:{folder}",
                "--runtime",
                "onnx",
                "--rate",
                "4",
                "--max-samples",
                str(len(pool)),
                "--outbox",
                str(tmp_path / "outbox.sqlite"),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=REPO,
                env=env,
            )
            payloads: list[bytes] = []

            async def collect() -> None:
                async for m in sub.messages:
                    payloads.append(bytes(m.payload))
                    if len(payloads) == len(pool):
                        return

            collecting = asyncio.create_task(collect())
            try:
                # --max-samples: the edge exits once its outbox has drained.
                output, _ = await asyncio.wait_for(process.communicate(), 60)
                await asyncio.wait_for(asyncio.shield(collecting), 5)
            except TimeoutError:
                pass
            finally:
                collecting.cancel()
                if process.returncode is None:
                    process.kill()
                    output, _ = await process.communicate()
            code = -1 if process.returncode is None else process.returncode
            return payloads, code, output.decode()

    payloads, code, log = asyncio.run(scenario())
    assert code == 0, log
    assert len(payloads) == len(pool), log
    for i, payload in enumerate(payloads):
        envelope = unpack(payload)
        assert envelope.device_id == "dev-2"
        assert_int8_close(envelope.data, reference_latent(full_model, pool.waveforms(i), 2))
