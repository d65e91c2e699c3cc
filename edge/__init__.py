"""The edge daemon: what runs on one field device (``epic edge``).

A stream source (``epic.edge.sources``: ``sim:``, ``openfwi:``, ``segy:``) gives the device's
receiver block for each shot; ``EncoderRuntime`` turns it into a latent with the bundle's
encoder (PyTorch or onnxruntime); the producer packs it into an envelope and appends it to
the disk ``Outbox``; the publisher drains the outbox to MQTT at QoS 1, reconnecting with
backoff, and keeps the device's retained status and heartbeat. ``EdgeDaemon`` owns them all.
"""

from epic.edge.config import EdgeConfig
from epic.edge.connection import BrokerEndpoint
from epic.edge.daemon import EdgeDaemon, run_edge
from epic.edge.encoder_runtime import EncoderRuntime
from epic.edge.outbox import Outbox
from epic.shared.wire import Backoff

__all__ = [
    "Backoff",
    "BrokerEndpoint",
    "EdgeConfig",
    "EdgeDaemon",
    "EncoderRuntime",
    "Outbox",
    "run_edge",
]
