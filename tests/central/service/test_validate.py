"""Every kind of bad message is rejected with its reason (and the sender, or ``?``)."""

from __future__ import annotations

import json
import struct
import time
import zlib

import numpy as np
import pytest

from epic.central.validate import Arrival, DeviceReport, Rejected, Validator
from epic.shared.wire import pack

from .conftest import Feed


@pytest.fixture
def validator(feed: Feed) -> Validator:
    return Validator(feed.manifest, raw_supported=False, max_envelope_bytes=64 * 1024)


def reason_of(v: Validator, topic: str, payload: bytes) -> tuple[str, str]:
    with pytest.raises(Rejected) as caught:
        v.message(topic, payload)
    return caught.value.reason, caught.value.device


def test_a_real_latent_is_accepted(validator: Validator, feed: Feed) -> None:
    item = validator.message(*feed.message(1, "dev-2"))
    assert isinstance(item, Arrival)
    assert (item.sample_id, item.device_id, item.kind) == (feed.sample_id(1), "dev-2", "latent")
    latent = feed.latents["dev-2"][1]
    # Within half an int8 step of the per-tensor scale (the wire code's coordinates are not
    # bounded by 1 as tokens were).
    np.testing.assert_allclose(item.data, latent, atol=np.abs(latent).max() / 127 / 2 + 1e-6)


def test_float16_and_zstd_envelopes_are_accepted(validator: Validator, feed: Feed) -> None:
    env = feed.envelope(0, "dev-0")
    for dtype, comp in (("float16", "none"), ("int8-channel", "zstd"), ("float32", "zstd")):
        assert isinstance(
            validator.message(feed.topic(0, "dev-0"), pack(env, dtype, comp)), Arrival
        )


def _flip(payload: bytes, at: int) -> bytes:
    b = bytearray(payload)
    b[at] ^= 0x10
    return bytes(b)


def _nan_float32(feed: Feed) -> bytes:
    """A float32 envelope whose latent holds a NaN, with a valid CRC (a buggy edge)."""
    good = pack(feed.envelope(0, "dev-1"), "float32")
    body = bytearray(good[:-4])
    at = len(body) - 4  # the payload's last float
    body[at:] = struct.pack("<f", float("nan"))
    return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


@pytest.mark.parametrize(
    ("case", "reason", "device"),
    [
        ("random bytes", "bad-magic", "dev-1"),
        ("empty", "truncated", "dev-1"),
        ("truncated", "crc", "dev-1"),
        ("bit flipped", "crc", "dev-1"),
        ("wrong deployment", "wrong-deployment", "dev-1"),
        ("wrong hash", "foreign-model", "dev-1"),
        ("wrong shape", "bad-shape", "dev-1"),
        ("NaN float32", "non-finite", "dev-1"),
        ("other sample in the envelope", "topic-mismatch", "dev-1"),
        ("oversize", "oversize", "dev-1"),
        ("future time", "future-time", "dev-1"),
        ("raw for a model with encoder weights", "raw-unsupported", "dev-1"),
    ],
)
def test_bad_envelopes(
    validator: Validator, feed: Feed, case: str, reason: str, device: str
) -> None:
    good = feed.payload(0, "dev-1")
    topic = feed.topic(0, "dev-1")
    payload = {
        "random bytes": bytes(np.random.default_rng(1).integers(0, 256, 600, dtype=np.uint8)),
        "empty": b"",
        "truncated": good[:-7],
        "bit flipped": _flip(good, 40),
        "wrong deployment": feed.payload(0, "dev-1", deployment="other"),
        "wrong hash": feed.payload(0, "dev-1", model_hash="0123456789abcdef"),
        "wrong shape": feed.payload(0, "dev-1", data=np.zeros((8, 32), np.float32)),
        "NaN float32": _nan_float32(feed),
        "other sample in the envelope": feed.payload(1, "dev-1"),
        "oversize": good + bytes(70 * 1024),
        "future time": feed.payload(0, "dev-1", acquired_ns=time.time_ns() + 10 * 60 * 10**9),
        "raw for a model with encoder weights": good,
    }[case]
    if case.startswith("raw"):
        topic = feed.topic(0, "dev-1", kind="raw")
    assert reason_of(validator, topic, payload) == (reason, device)


def test_unknown_device_and_bad_ids_in_topics(validator: Validator, feed: Feed) -> None:
    sid = feed.sample_id(0)
    stranger = feed.payload(0, "dev-1", device_id="dev-9")
    assert reason_of(validator, feed.topic(0, "dev-9"), stranger) == ("unknown-device", "dev-9")
    assert reason_of(validator, f"epic/demo/latent/{sid}/bad id", b"x") == ("bad-id", "?")
    assert reason_of(validator, "epic/demo/latent/" + "s" * 65 + "/dev-0", b"x") == (
        "bad-id",
        "dev-0",
    )
    assert reason_of(validator, "epic/demo/latent/s1", b"x") == ("bad-topic", "s1")
    assert reason_of(validator, "epic/other/latent/s1/dev-0", b"x") == ("bad-topic", "?")
    assert reason_of(validator, "epic/demo/heartbeat/no way", b"{}") == ("bad-id", "?")


def test_status_and_heartbeat(validator: Validator) -> None:
    status = json.dumps({"online": True, "bundle_hash": "abc", "receivers": [0, 14]}).encode()
    report = validator.message("epic/demo/status/dev-0", status, retained=True)
    assert isinstance(report, DeviceReport) and report.payload["online"] is True
    assert report.retained
    cleared = validator.message("epic/demo/status/dev-0", b"")
    assert isinstance(cleared, DeviceReport) and cleared.payload is None
    beat = validator.message("epic/demo/heartbeat/dev-0", b'{"outbox_depth": 3}')
    assert isinstance(beat, DeviceReport) and beat.payload == {"outbox_depth": 3}
    for payload in (b"{not json", b"[1, 2]", b'{"online": "maybe"}', b"\xff\xfe"):
        assert reason_of(validator, "epic/demo/status/dev-0", payload) == ("bad-status", "dev-0")
    assert reason_of(validator, "epic/demo/heartbeat/dev-3", b"nope") == ("bad-heartbeat", "dev-3")
    assert reason_of(validator, "epic/demo/heartbeat/dev-3", b"{" * 70_000) == (
        "bad-heartbeat",
        "dev-3",
    )


def test_raw_blocks_for_the_centralized_baseline(raw_feed: Feed) -> None:
    v = Validator(raw_feed.manifest, raw_supported=True, max_envelope_bytes=4 * 1024 * 1024)
    block = raw_feed.blocks["dev-0"][0]
    env = raw_feed.envelope(0, "dev-0", data=block)
    item = v.message(raw_feed.topic(0, "dev-0", kind="raw"), pack(env, "float32"))
    assert isinstance(item, Arrival) and item.kind == "raw" and item.data.shape == (5, 1000, 14)
    short = pack(raw_feed.envelope(0, "dev-0", data=block[:, :500]), "float32")
    assert reason_of(v, raw_feed.topic(0, "dev-0", kind="raw"), short) == ("bad-shape", "dev-0")
