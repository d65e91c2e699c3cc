"""The latent envelope: round trips, and every kind of damage rejected with a typed error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from epic.shared.wire import (
    Compression,
    Envelope,
    EnvelopeError,
    LatentDtype,
    pack,
    unpack,
)

HASH = "530d0a14c3b92b14"
ids = st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True)
shapes = st.lists(st.integers(1, 9), min_size=1, max_size=4).map(tuple)
finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    data = draw(shapes.flatmap(lambda s: arrays(np.float32, s, elements=finite)))
    return Envelope(
        deployment=draw(ids),
        sample_id=draw(ids),
        device_id=draw(ids),
        model_hash=draw(st.binary(min_size=8, max_size=8)).hex(),
        acquired_ns=draw(st.integers(-(2**63), 2**63 - 1)),
        encode_us=draw(st.integers(0, 2**32 - 1)),
        data=data,
    )


def _tolerance(data: np.ndarray, dtype: LatentDtype) -> np.ndarray:
    """How far a value may move on the wire in ``dtype``."""
    if dtype == LatentDtype.FLOAT32:
        return np.zeros_like(data)
    if dtype == LatentDtype.FLOAT16:
        return np.abs(data) * 1e-3 + 1e-3  # float16 keeps ~3 decimal digits (and subnormals)
    if dtype == LatentDtype.INT8:
        return np.full_like(data, np.abs(data).max(initial=0) / 127 * 0.5001 + 1e-9)
    per_channel = np.abs(data.reshape(-1, data.shape[-1])).max(axis=0) / 127 * 0.5001 + 1e-9
    return np.broadcast_to(per_channel, data.shape)


@settings(max_examples=200, deadline=None)
@given(envelopes(), st.sampled_from(LatentDtype), st.sampled_from(Compression))
@example(  # a subnormal peak: peak / 127 underflowed to a scale of 0, which unpack refuses
    Envelope("d", "s", "v", "00" * 8, 0, 0, np.array([1e-44, 0.0], np.float32)),
    LatentDtype.INT8,
    Compression.NONE,
)
@example(
    Envelope("d", "s", "v", "00" * 8, 0, 0, np.array([[1e-44, 2.0]], np.float32)),
    LatentDtype.INT8_CHANNEL,
    Compression.NONE,
)
def test_round_trip(env: Envelope, dtype: LatentDtype, compression: Compression) -> None:
    wire = pack(env, dtype=dtype, compression=compression)
    out = unpack(wire)
    assert (out.deployment, out.sample_id, out.device_id) == (
        env.deployment,
        env.sample_id,
        env.device_id,
    )
    assert (out.model_hash, out.acquired_ns, out.encode_us) == (
        env.model_hash,
        env.acquired_ns,
        env.encode_us,
    )
    assert (out.dtype, out.compression, out.wire_bytes) == (dtype, compression, len(wire))
    assert out.data.dtype == np.float32 and out.data.shape == env.data.shape
    if dtype == LatentDtype.FLOAT16:
        # float16 saturates at 65504 and loses relative precision ~1e-3: compare that way.
        expected = env.data.astype(np.float16).astype(np.float32)
        assert np.array_equal(out.data, expected)
    else:
        assert np.all(np.abs(out.data - env.data) <= _tolerance(env.data, dtype))


@settings(max_examples=300, deadline=None)
@given(envelopes(), st.sampled_from(LatentDtype), st.sampled_from(Compression), st.data())
def test_any_flipped_bit_is_rejected(
    env: Envelope, dtype: LatentDtype, compression: Compression, data: st.DataObject
) -> None:
    wire = bytearray(pack(env, dtype=dtype, compression=compression))
    bit = data.draw(st.integers(0, len(wire) * 8 - 1))
    wire[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(EnvelopeError):
        unpack(bytes(wire))


@settings(max_examples=300, deadline=None)
@given(envelopes(), st.sampled_from(Compression), st.data())
def test_any_truncation_is_rejected(
    env: Envelope, compression: Compression, data: st.DataObject
) -> None:
    wire = pack(env, compression=compression)
    cut = data.draw(st.integers(0, len(wire) - 1))
    with pytest.raises(EnvelopeError):
        unpack(wire[:cut])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_are_rejected(blob: bytes) -> None:
    with pytest.raises(EnvelopeError):
        unpack(blob)


def _env(**changes: object) -> Envelope:
    values = dict(
        deployment="demo",
        sample_id="s1",
        device_id="dev-0",
        model_hash=HASH,
        acquired_ns=1,
        encode_us=2,
        data=np.zeros((8, 64), np.float32),
    )
    values.update(changes)
    return Envelope(**values)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sample_id": "a/b"}, "bad-id"),
        ({"device_id": "x" * 65}, "bad-id"),
        ({"deployment": ""}, "bad-id"),
        ({"model_hash": "xyz"}, "bad-hash"),
        ({"data": np.full((2, 2), np.nan, np.float32)}, "non-finite"),
        ({"data": np.zeros((0, 3), np.float32)}, "bad-shape"),
        ({"data": np.zeros((1, 1, 1, 1, 1), np.float32)}, "bad-shape"),
        ({"encode_us": -1}, "bad-time"),
    ],
)
def test_pack_refuses_what_would_not_unpack(changes: dict, reason: str) -> None:
    with pytest.raises(EnvelopeError) as err:
        pack(_env(**changes))
    assert err.value.reason == reason


def _reseal(body: bytes) -> bytes:
    """A hostile sender can compute a valid CRC: the fields must hold up on their own."""
    import struct
    import zlib

    return body + struct.pack("<I", zlib.crc32(body))


def test_fields_are_checked_even_under_a_valid_crc() -> None:
    wire = pack(_env(), dtype="float32")
    body = bytearray(wire[:-4])
    bad_version = bytearray(body)
    bad_version[4] = 9
    bad_dtype = bytearray(body)
    bad_dtype[5] = 7
    bad_dims = bytearray(body)
    bad_dims[8:12] = (2**31).to_bytes(4, "little")
    for blob, reason in [
        (bad_version, "bad-version"),
        (bad_dtype, "bad-dtype"),
        (bad_dims, "bad-shape"),
        (body + b"x", "trailing"),
    ]:
        with pytest.raises(EnvelopeError) as err:
            unpack(_reseal(bytes(blob)))
        assert err.value.reason == reason
    nan = pack(_env(data=np.ones((2, 2), np.float32)), dtype="float32")
    poisoned = bytearray(nan[:-4])
    poisoned[-16:-12] = np.array([np.nan], np.float32).tobytes()
    with pytest.raises(EnvelopeError) as err:
        unpack(_reseal(bytes(poisoned)))
    assert err.value.reason == "non-finite"


def test_size_bound_and_zstd_bomb() -> None:
    wire = pack(_env(data=np.zeros((100, 100), np.float32)), compression="zstd")
    with pytest.raises(EnvelopeError) as err:
        unpack(wire, max_bytes=len(wire) - 1)
    assert err.value.reason == "oversize"
    # A zstd frame that expands past what the shape declares is refused, not inflated.
    import struct

    import zstandard

    bomb = zstandard.ZstdCompressor().compress(b"\0" * 10_000_000)
    small = pack(_env(data=np.zeros((4,), np.float32)), dtype="float32", compression="zstd")
    body = small[:-4]
    payload = zstandard.ZstdCompressor(level=10).compress(b"\0" * 16)  # as pack made it
    assert body.endswith(struct.pack("<I", len(payload)) + payload)
    # Keep the header, swap in the bomb, and reseal: only the fields can catch it now.
    blob = body[: -len(payload) - 4] + struct.pack("<I", len(bomb)) + bomb
    with pytest.raises(EnvelopeError) as err:
        unpack(_reseal(blob))
    assert err.value.reason == "bad-compression"


def test_shipped_model_envelope_fits_the_budget() -> None:
    """One device's int8 latent of the shipped model: within 1,400 bytes on the wire."""
    wire = pack(_env(data=np.random.default_rng(0).uniform(-1, 1, (8, 64)).astype(np.float32)))
    assert len(wire) <= 1400
    assert len(wire) < 280_000 / 200
