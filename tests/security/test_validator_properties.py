"""The centre's checks, fuzzed directly (no broker, so thousands of cases in seconds): any
topic and payload gives an ``Arrival``, a ``DeviceReport`` or a ``Rejected`` with a reason,
never another exception; and an envelope with any bytes overwritten, resealed with a valid
CRC or not, is either still exactly right or rejected."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epic.central.validate import Arrival, DeviceReport, Rejected, Validator
from tests.central.service.conftest import Feed

from .garbage import hypothesis_messages

FAST = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def validator(feed: Feed) -> Validator:
    return Validator(feed.manifest, raw_supported=False, max_envelope_bytes=64 * 1024)


@FAST
@given(message=hypothesis_messages("demo"))
def test_any_message_is_accepted_or_rejected_with_a_reason(
    validator: Validator, message: tuple[str, bytes]
) -> None:
    try:
        item = validator.message(*message)
    except Rejected as rejected:
        assert rejected.reason and rejected.device
    else:
        assert isinstance(item, (Arrival, DeviceReport))


@FAST
@given(data=st.data())
def test_an_overwritten_envelope_is_rejected_or_still_right(
    validator: Validator, feed: Feed, data: st.DataObject
) -> None:
    topic, good = feed.message(1, "dev-3")
    body = bytearray(good[:-4])
    at = data.draw(st.integers(0, len(body) - 1))
    new = data.draw(st.binary(min_size=1, max_size=16))
    body[at : at + len(new)] = new
    reseal = data.draw(st.booleans())
    crc = zlib.crc32(bytes(body)) if reseal else struct.unpack("<I", good[-4:])[0]
    payload = bytes(body) + struct.pack("<I", crc)
    try:
        item = validator.message(topic, payload)
    except Rejected as rejected:
        assert rejected.reason
        return
    # Accepted: then it says what a real latent of dev-3 for that sample says, in shape
    # and finiteness (the bytes changed may have been latent values or the timestamp).
    assert isinstance(item, Arrival) and item.device_id == "dev-3"
    assert item.data.shape == (48,) and np.isfinite(item.data).all()
