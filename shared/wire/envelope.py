"""The latent envelope: the bytes of one MQTT payload from an edge device.

One envelope carries one device's latent for one sample (or, for the centralized
baseline, its raw waveforms). Layout, little-endian, version 1::

    magic  "EPIC"                4 B
    version                      u8
    dtype                        u8   0 int8 (per-tensor scale), 1 int8 (per-channel scale,
                                      channel = last axis), 2 float16, 3 float32
    compression                  u8   0 none, 1 zstd
    ndim                         u8   1..4, then ndim x u32 dims
    model hash                   8 B  (the manifest's 16 hex digits, as bytes)
    acquired                     i64  UTC ns, when the shot was recorded
    encode time                  u32  microseconds the edge spent reading and encoding
    deployment, sample, device   u8 length + ASCII each, ``[A-Za-z0-9_.-]{1,64}``
    scales                       f32 x (0 | 1 | last dim)
    payload length               u32, then the payload (compressed or not)
    CRC32                        u32  over every byte before it

The CRC covers the header as well as the payload (a flipped bit in a sample id or a
timestamp is as wrong as one in the latent), so any single flipped
bit or truncation is caught before anything is parsed. Everything is then checked field by
field; every failure is one ``EnvelopeError`` whose ``reason`` is a short code the centre
counts by.

What it costs, for the shipped EPIC-Net lite: since 2026-12-05 each device sends 48
numbers, its tokens' coordinates along their 48 main directions (the wire code,
``epic.shared.models.wire_code``, fitted by ``epic compress``), in place of 8 tokens x 64.
Measured with ``python -m epic.lab.eval.envelope_fidelity models/epic-lite-5.pt DIR... --against
TOKENS.pt`` (the checkpoint before ``epic compress``) on OpenFWI's 1,500 held-out test
maps (FlatVel-A, FlatFault-A, CurveVel-A ``*-test11``, never trained or fitted on); the
loss is against the uncompressed model's float32 tokens, so it counts the dropped
directions as well as the rounding:

=====================  ============  ====================================  =================
latent on the wire     bytes / env.  SSIM lost (mean; worst of 1,500)      vs raw (280,000 B)
=====================  ============  ====================================  =================
48 numbers, int8       110           0.00013; 0.054                        2,545x fewer
48 numbers, float16    154           0.00015; 0.041                        1,818x
8 x 64 tokens, int8    578           -0.00001; 0.0024                      484x
8 x 64 tokens, float32 2,110         (reference)                           133x
=====================  ============  ====================================  =================

So int8 with one per-tensor scale (the default) is all the wire needs: the code divides
each coordinate by its spread on the training data, so one scale suits them all. The
header is 62 bytes with these short ids (about 80 with the bench's ``flatfault-a-<slot>``
sample ids). ``tests/shared/test_envelope_fidelity.py`` re-checks the budget in CI.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum
from functools import partial

import numpy as np

from epic.shared.errors import UserError
from epic.shared.wire.ids import check_id

__all__ = [
    "MAX_ELEMENTS",
    "MAX_ENVELOPE_BYTES",
    "Compression",
    "Envelope",
    "EnvelopeError",
    "LatentDtype",
    "pack",
    "unpack",
]

MAGIC = b"EPIC"
VERSION = 1
HASH_BYTES = 8
MAX_NDIM = 4
# One device's raw block in float32 is 5 x 1000 x 70 x 4 B = 1.4 MB at most (N = 1); the
# bound leaves room for longer records without letting one message claim a gigabyte.
MAX_ELEMENTS = 4 * 1024 * 1024
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024

_FIXED = struct.Struct("<4sBBBB")  # magic, version, dtype, compression, ndim
_TAIL = struct.Struct("<8sqI")  # model hash, acquired ns, encode us
_U32 = struct.Struct("<I")
_CRC = struct.Struct("<I")


class LatentDtype(IntEnum):
    INT8 = 0
    INT8_CHANNEL = 1
    FLOAT16 = 2
    FLOAT32 = 3

    @classmethod
    def parse(cls, name: str) -> LatentDtype:
        names = {
            "int8": cls.INT8,
            "int8-channel": cls.INT8_CHANNEL,
            "float16": cls.FLOAT16,
            "float32": cls.FLOAT32,
        }
        try:
            return names[name]
        except KeyError:
            raise ValueError(f"latent dtype {name!r}: choose one of {', '.join(names)}") from None


class Compression(IntEnum):
    NONE = 0
    ZSTD = 1


_ITEMSIZE = {
    LatentDtype.INT8: 1,
    LatentDtype.INT8_CHANNEL: 1,
    LatentDtype.FLOAT16: 2,
    LatentDtype.FLOAT32: 4,
}
_NUMPY = {
    LatentDtype.INT8: np.int8,
    LatentDtype.INT8_CHANNEL: np.int8,
    LatentDtype.FLOAT16: np.float16,
    LatentDtype.FLOAT32: np.float32,
}


class EnvelopeError(UserError, ValueError):
    """An envelope that cannot be trusted. ``reason`` is a short code for counting.

    A ``UserError``, so one that reaches ``epic`` ends it in one line and exit code 2."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _check_id(value: str, what: str) -> str:
    """``epic.shared.wire.ids.check_id``, failing as an envelope does: ``bad-id``."""
    return check_id(value, what, partial(EnvelopeError, "bad-id"))


def _check_hash(model_hash: str) -> bytes:
    try:
        raw = bytes.fromhex(model_hash)
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != HASH_BYTES:
        raise EnvelopeError("bad-hash", f"model hash {model_hash!r} is not {2 * HASH_BYTES} hex")
    return raw


@dataclass(frozen=True)
class Envelope:
    """One device's latent (or raw block) for one sample, as floats."""

    deployment: str
    sample_id: str
    device_id: str
    model_hash: str
    acquired_ns: int
    encode_us: int
    data: np.ndarray = field(repr=False)
    # How it travelled; set by ``unpack``, ignored by ``pack`` (which takes arguments).
    dtype: LatentDtype = LatentDtype.FLOAT32
    compression: Compression = Compression.NONE
    wire_bytes: int = 0


def _quantize(x: np.ndarray, dtype: LatentDtype) -> tuple[np.ndarray, np.ndarray]:
    if dtype in (LatentDtype.FLOAT16, LatentDtype.FLOAT32):
        return x.astype(_NUMPY[dtype]), np.zeros(0, np.float32)
    if dtype == LatentDtype.INT8:
        peak = np.abs(x).max(initial=0.0).reshape(1)
    else:  # per channel, the last axis
        peak = np.abs(x.reshape(-1, x.shape[-1])).max(axis=0, initial=0.0)
    scales = (peak / 127.0).astype(np.float32)
    # All zeros, or a subnormal peak whose /127 underflows to 0 in float32: any positive
    # scale sends such values to 0, and the reader refuses a scale that is not positive.
    scales[~(scales > 0)] = 1.0
    q = np.rint(x / (scales[0] if dtype == LatentDtype.INT8 else scales))
    return np.clip(q, -127, 127).astype(np.int8), scales


def pack(
    envelope: Envelope,
    dtype: LatentDtype | str = LatentDtype.INT8,
    compression: Compression | str = Compression.NONE,
) -> bytes:
    """Bytes for the wire. Raises ``EnvelopeError`` for anything that would not unpack."""
    if isinstance(dtype, str):
        dtype = LatentDtype.parse(dtype)
    if isinstance(compression, str):
        try:
            compression = Compression[compression.upper()]
        except KeyError:
            raise ValueError(f"compression {compression!r}: choose none or zstd") from None
    x = np.asarray(envelope.data, dtype=np.float32)
    if not 1 <= x.ndim <= MAX_NDIM or x.size == 0 or x.size > MAX_ELEMENTS:
        raise EnvelopeError("bad-shape", f"shape {x.shape} not 1-{MAX_NDIM}-D, 1-{MAX_ELEMENTS}")
    if not np.isfinite(x).all():
        raise EnvelopeError("non-finite", "latent holds NaN or infinity")
    names = [
        _check_id(envelope.deployment, "deployment"),
        _check_id(envelope.sample_id, "sample id"),
        _check_id(envelope.device_id, "device id"),
    ]
    if not 0 <= envelope.encode_us < 2**32:
        raise EnvelopeError("bad-time", f"encode time {envelope.encode_us} us out of range")
    if not -(2**63) <= envelope.acquired_ns < 2**63:
        raise EnvelopeError("bad-time", f"acquisition time {envelope.acquired_ns} out of range")
    values, scales = _quantize(x, dtype)
    payload = values.tobytes()
    if compression == Compression.ZSTD:
        import zstandard  # optional on the wire; imported only when asked for

        payload = zstandard.ZstdCompressor(level=10).compress(payload)
    parts = [
        _FIXED.pack(MAGIC, VERSION, dtype, compression, x.ndim),
        struct.pack(f"<{x.ndim}I", *x.shape),
        _TAIL.pack(_check_hash(envelope.model_hash), envelope.acquired_ns, envelope.encode_us),
    ]
    for name in names:
        raw = name.encode("ascii")
        parts += [bytes([len(raw)]), raw]
    parts += [scales.astype("<f4").tobytes(), _U32.pack(len(payload)), payload]
    body = b"".join(parts)
    return body + _CRC.pack(zlib.crc32(body))


class _Reader:
    """Reads fields in order; running out of bytes is a typed error, not an IndexError."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise EnvelopeError("truncated", f"ends inside the {what}")
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def unpack(self, fmt: struct.Struct, what: str) -> tuple:
        return fmt.unpack(self.take(fmt.size, what))

    def name(self, what: str) -> str:
        (length,) = self.take(1, what)
        try:
            value = self.take(length, what).decode("ascii")
        except UnicodeDecodeError:
            raise EnvelopeError("bad-id", f"{what} is not ASCII") from None
        return _check_id(value, what)


def unpack(data: bytes, max_bytes: int = MAX_ENVELOPE_BYTES) -> Envelope:
    """Check every field and return the envelope with its data as float32.

    Raises ``EnvelopeError`` (and nothing else) for anything malformed.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EnvelopeError("not-bytes", f"payload is {type(data).__name__}, not bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise EnvelopeError("oversize", f"{len(data)} bytes, more than {max_bytes}")
    if len(data) < _FIXED.size + _CRC.size:
        raise EnvelopeError("truncated", f"only {len(data)} bytes")
    if data[:4] != MAGIC:
        raise EnvelopeError("bad-magic", f"starts with {data[:4]!r}, not {MAGIC!r}")
    body, (crc,) = data[: -_CRC.size], _CRC.unpack(data[-_CRC.size :])
    if zlib.crc32(body) != crc:
        raise EnvelopeError("crc", "CRC32 mismatch (damaged or truncated)")
    r = _Reader(body)
    _, version, dtype_code, comp_code, ndim = r.unpack(_FIXED, "header")
    if version != VERSION:
        raise EnvelopeError("bad-version", f"format version {version}, this reads {VERSION}")
    try:
        dtype, compression = LatentDtype(dtype_code), Compression(comp_code)
    except ValueError:
        raise EnvelopeError("bad-dtype", f"dtype {dtype_code} / compression {comp_code}") from None
    if not 1 <= ndim <= MAX_NDIM:
        raise EnvelopeError("bad-shape", f"{ndim} dimensions, expected 1-{MAX_NDIM}")
    shape = struct.unpack(f"<{ndim}I", r.take(4 * ndim, "shape"))
    count = int(np.prod(shape, dtype=np.int64))
    if min(shape) < 1 or count > MAX_ELEMENTS:
        raise EnvelopeError("bad-shape", f"shape {shape} not within 1-{MAX_ELEMENTS} elements")
    hash_raw, acquired_ns, encode_us = r.unpack(_TAIL, "header")
    deployment = r.name("deployment")
    sample_id = r.name("sample id")
    device_id = r.name("device id")
    n_scales = {LatentDtype.INT8: 1, LatentDtype.INT8_CHANNEL: shape[-1]}.get(dtype, 0)
    scales = np.frombuffer(r.take(4 * n_scales, "scales"), "<f4")
    if not (np.isfinite(scales).all() and (scales > 0).all()):
        raise EnvelopeError("bad-scale", "int8 scale not finite and positive")
    (length,) = r.unpack(_U32, "payload length")
    payload = r.take(length, "payload")
    if r.at != len(body):
        raise EnvelopeError("trailing", f"{len(body) - r.at} bytes after the payload")
    expected = count * _ITEMSIZE[dtype]
    if compression == Compression.ZSTD:
        payload = _decompress(payload, expected)
    if len(payload) != expected:
        raise EnvelopeError("bad-shape", f"payload {len(payload)} B, shape needs {expected} B")
    values = np.frombuffer(payload, _NUMPY[dtype]).reshape(shape)
    if dtype in (LatentDtype.INT8, LatentDtype.INT8_CHANNEL):
        out = values.astype(np.float32) * (scales[0] if n_scales == 1 else scales)
    else:
        out = values.astype(np.float32)
        if not np.isfinite(out).all():
            raise EnvelopeError("non-finite", "latent holds NaN or infinity")
    return Envelope(
        deployment=deployment,
        sample_id=sample_id,
        device_id=device_id,
        model_hash=hash_raw.hex(),
        acquired_ns=acquired_ns,
        encode_us=encode_us,
        data=out,
        dtype=dtype,
        compression=compression,
        wire_bytes=len(data),
    )


def _decompress(payload: bytes, expected: int) -> bytes:
    import zstandard

    try:
        # Read at most one byte more than the shape needs: a frame that claims (or would
        # inflate to) more is refused without ever being expanded (zstandard's
        # max_output_size is ignored when the frame declares its size).
        declared = zstandard.frame_content_size(payload)
        if declared not in (-1, expected):
            raise EnvelopeError(
                "bad-compression", f"zstd frame holds {declared} B, shape needs {expected} B"
            )
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(payload)) as reader:
            out = reader.read(expected + 1)
    except zstandard.ZstdError as exc:
        raise EnvelopeError("bad-compression", f"zstd: {exc}") from None
    if len(out) != expected:
        raise EnvelopeError("bad-compression", f"zstd gives {len(out)} B, shape needs {expected}")
    return out
