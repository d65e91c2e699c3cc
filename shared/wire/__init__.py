"""The wire contract between edge devices, the broker and the centre, in one place.

- ``topic``: the topic layout ``epic/<deployment>/<kind>/...``, built, parsed, filtered, matched;
- ``access``: which topics each party may read and write (the broker's ACL);
- ``ids``: the one id pattern for deployments, samples and devices;
- ``envelope``: the bytes of one latent (or raw block) message;
- ``endpoint``: the broker's URL, read alike by edge and centre;
- ``backoff``: how long either waits before connecting again.
"""

from epic.shared.wire.access import Access, centre_access, device_access
from epic.shared.wire.backoff import Backoff
from epic.shared.wire.endpoint import BrokerUrl, parse_broker_url, parse_broker_urls
from epic.shared.wire.envelope import (
    MAX_ELEMENTS,
    MAX_ENVELOPE_BYTES,
    Compression,
    Envelope,
    EnvelopeError,
    LatentDtype,
    pack,
    unpack,
)
from epic.shared.wire.ids import ID_CHARS, ID_PATTERN, ID_REGEX, ID_SPEC, check_id
from epic.shared.wire.topic import (
    FROM_EDGES,
    HEARTBEAT,
    KINDS,
    LATENT,
    MAP,
    RAW,
    ROOT,
    STATUS,
    Address,
    Topic,
    TopicError,
    Wildcard,
    envelope_topic,
    heartbeat_topic,
    latent_topic,
    make_topic,
    map_topic,
    parse_topic,
    status_topic,
    subtree,
    topic_filter,
)

__all__ = [
    "FROM_EDGES",
    "HEARTBEAT",
    "ID_CHARS",
    "ID_PATTERN",
    "ID_REGEX",
    "ID_SPEC",
    "KINDS",
    "LATENT",
    "MAP",
    "MAX_ELEMENTS",
    "MAX_ENVELOPE_BYTES",
    "RAW",
    "ROOT",
    "STATUS",
    "Access",
    "Address",
    "Backoff",
    "BrokerUrl",
    "Compression",
    "Envelope",
    "EnvelopeError",
    "LatentDtype",
    "Topic",
    "TopicError",
    "Wildcard",
    "centre_access",
    "check_id",
    "device_access",
    "envelope_topic",
    "heartbeat_topic",
    "latent_topic",
    "make_topic",
    "map_topic",
    "pack",
    "parse_broker_url",
    "parse_broker_urls",
    "parse_topic",
    "status_topic",
    "subtree",
    "topic_filter",
    "unpack",
]
