"""Bad messages for the centre, made fast: a seeded numpy RNG mutating real envelopes, and
hypothesis strategies for the same topics.

Every message goes to a topic the centre subscribes to (``epic/<dep>/latent|raw/+/+``,
``status/+``, ``heartbeat/+``; nothing else reaches it) under a sample id of its own
(``fuzz-...``), so that none can touch a good sample. Header mutations are resealed with a
fresh CRC so that they reach the checks behind it instead of all failing the CRC.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from collections.abc import Callable

import numpy as np
from hypothesis import strategies as st

from epic.shared.wire import Envelope, pack

__all__ = ["KINDS", "garbage", "hypothesis_messages"]

Message = tuple[str, bytes]
# Offsets in an envelope: see shared/wire/envelope.py's layout (dims: the first dimension's).
_VERSION, _DTYPE, _COMP, _NDIM, _DIMS = 4, 5, 6, 7, 8
_BAD_ID_CHARS = " %!*'()é;:@&=$,?[]~"


def _reseal(body: bytes | bytearray) -> bytes:
    return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


class _Maker:
    def __init__(self, feed: object, rng: np.random.Generator) -> None:
        self.feed, self.rng = feed, rng
        self.dep = feed.deployment  # type: ignore[attr-defined]
        self.devices = feed.devices  # type: ignore[attr-defined]
        self.n = 0
        # Numbers in one latent (the shipped model's wire code: 48 a device).
        self.values = int(np.prod(self.feed.envelope(0, self.devices[0]).data.shape))  # type: ignore[attr-defined]

    def ids(self) -> tuple[str, str]:
        self.n += 1
        return f"fuzz-{self.n}", str(self.rng.choice(self.devices))

    def topic(self, sid: str, dev: str, kind: str = "latent") -> str:
        return f"epic/{self.dep}/{kind}/{sid}/{dev}"

    def good(self, sid: str, dev: str, dtype: str = "int8", **kw: object) -> bytes:
        env: Envelope = self.feed.envelope(int(self.rng.integers(3)), dev, sample_id=sid, **kw)  # type: ignore[attr-defined]
        return pack(env, dtype)

    def randint(self, low: int, high: int) -> int:
        return int(self.rng.integers(low, high))

    # -- one maker per kind of damage ---------------------------------------------------
    def random_bytes(self) -> Message:
        sid, dev = self.ids()
        return self.topic(sid, dev), self.rng.bytes(self.randint(0, 2000))

    def truncated(self) -> Message:
        sid, dev = self.ids()
        good = self.good(sid, dev)
        return self.topic(sid, dev), good[: self.randint(0, len(good))]

    def bit_flips(self) -> Message:
        sid, dev = self.ids()
        b = bytearray(self.good(sid, dev))
        for _ in range(self.randint(1, 9)):
            b[self.randint(0, len(b))] ^= 1 << self.randint(0, 8)
        return self.topic(sid, dev), bytes(b)

    def header(self) -> Message:
        """A field set to nonsense, with a valid CRC."""
        sid, dev = self.ids()
        body = bytearray(self.good(sid, dev)[:-4])
        what = self.randint(0, 8)
        if what == 0:
            body[_VERSION] = self.randint(2, 256)
        elif what == 1:
            body[_DTYPE] = self.randint(4, 256)
        elif what == 2:
            body[_COMP] = self.randint(2, 256)
        elif what == 3:
            body[_NDIM] = self.rng.choice([0, *range(5, 256)])
        elif what == 4:  # huge shapes: the header claims billions of elements
            body[_DIMS : _DIMS + 4] = struct.pack("<I", self.randint(2**23, 2**32))
        elif what == 5:
            body[_DIMS : _DIMS + 4] = struct.pack("<I", 0)
        elif what == 6:
            body += self.rng.bytes(self.randint(1, 64))  # trailing bytes
        else:  # the int8 scale: NaN, infinite, zero or negative
            scale = float(self.rng.choice([np.nan, np.inf, 0.0, -1.0]))
            at = len(body) - 4 - self.values - 4  # scale, payload length, int8 values
            body[at : at + 4] = struct.pack("<f", scale)
        return self.topic(sid, dev), _reseal(body)

    def non_finite(self) -> Message:
        """NaN or infinity in a float16/float32 latent, sealed as a buggy edge would."""
        sid, dev = self.ids()
        dtype = str(self.rng.choice(["float16", "float32"]))
        body = bytearray(self.good(sid, dev, dtype)[:-4])
        size, code = (2, "<e") if dtype == "float16" else (4, "<f")
        value = float(self.rng.choice([np.nan, np.inf, -np.inf]))
        at = len(body) - size * self.randint(1, self.values + 1)
        body[at : at + size] = struct.pack(code, value)
        return self.topic(sid, dev), _reseal(body)

    def bad_topic_id(self) -> Message:
        sid, dev = self.ids()
        bad = "".join(self.rng.choice(list(_BAD_ID_CHARS), self.randint(1, 4)))
        if self.rng.random() < 0.3:
            bad = "x" * 65  # too long
        payload = self.good(sid, dev)
        if self.rng.random() < 0.5:
            return self.topic(f"fuzz{bad}", dev), payload
        return self.topic(sid, f"dev{bad}"), payload

    def mismatch(self) -> Message:
        sid, dev = self.ids()
        return self.topic(sid, dev), self.good(f"{sid}-other", dev)

    def future(self) -> Message:
        sid, dev = self.ids()
        ahead = int(self.rng.uniform(600, 10**8) * 1e9)
        return self.topic(sid, dev), self.good(sid, dev, acquired_ns=time.time_ns() + ahead)

    def wrong_deployment(self) -> Message:
        sid, dev = self.ids()
        return self.topic(sid, dev), self.good(sid, dev, deployment=f"other{self.randint(0, 99)}")

    def wrong_hash(self) -> Message:
        sid, dev = self.ids()
        return self.topic(sid, dev), self.good(sid, dev, model_hash=self.rng.bytes(8).hex())

    def unknown_device(self) -> Message:
        sid, _ = self.ids()
        dev = f"dev-{self.randint(5, 10_000)}"
        return self.topic(sid, dev), self.good(sid, self.devices[0], device_id=dev)

    def wrong_shape(self) -> Message:
        sid, dev = self.ids()
        shape = (self.randint(1, 9), self.randint(1, 65))
        data = self.rng.uniform(-1, 1, shape).astype(np.float32)
        return self.topic(sid, dev), self.good(sid, dev, data=data)

    def raw_for_latent_model(self) -> Message:
        sid, dev = self.ids()
        return self.topic(sid, dev, "raw"), self.good(sid, dev)

    def zstd_bomb(self) -> Message:
        """A zstd frame that declares (or inflates to) far more than the shape needs."""
        import zstandard

        sid, dev = self.ids()
        body = bytearray(self.good(sid, dev)[:-4])
        body[_COMP] = 1
        frame = zstandard.ZstdCompressor().compress(bytes(self.randint(self.values + 1, 2**20)))
        if self.rng.random() < 0.5:
            frame = self.rng.bytes(self.randint(1, 300))  # not zstd at all
        body = body[: len(body) - 4 - self.values] + struct.pack("<I", len(frame)) + frame
        return self.topic(sid, dev), _reseal(body)

    def oversize(self) -> Message:
        sid, dev = self.ids()
        return self.topic(sid, dev), self.good(sid, dev) + bytes(70_000)

    def bad_report(self) -> Message:
        dev = str(self.rng.choice(self.devices))
        kind = str(self.rng.choice(["status", "heartbeat"]))
        pick = self.randint(0, 4)
        if pick == 0:
            payload = self.rng.bytes(self.randint(1, 200))
        elif pick == 1:
            payload = json.dumps([1, 2, self.randint(0, 9)]).encode()  # JSON, not an object
        elif pick == 2:
            payload = b'{"online": "yes", "status": "maybe"}' if kind == "status" else b"{"
        else:
            payload = b'{"x": "' + b"y" * 70_000 + b'"}'  # more than 64 kB of JSON
        return f"epic/{self.dep}/{kind}/{dev}", payload


KINDS: dict[str, Callable[[_Maker], Message]] = {
    name: getattr(_Maker, name)
    for name in (
        "random_bytes",
        "truncated",
        "bit_flips",
        "header",
        "non_finite",
        "bad_topic_id",
        "mismatch",
        "future",
        "wrong_deployment",
        "wrong_hash",
        "unknown_device",
        "wrong_shape",
        "raw_for_latent_model",
        "zstd_bomb",
        "bad_report",
    )
}


def garbage(feed: object, count: int, seed: int = 0, oversize: int = 10) -> list[Message]:
    """``count`` bad messages, every kind in turn (plus ``oversize`` 70 kB ones)."""
    maker = _Maker(feed, np.random.default_rng(seed))
    makers = list(KINDS.values())
    out = [makers[k % len(makers)](maker) for k in range(count - oversize)]
    return out + [maker.oversize() for _ in range(oversize)]


_id_chars = st.sampled_from("abcXYZ019_.-" + _BAD_ID_CHARS)


def hypothesis_messages(deployment: str) -> st.SearchStrategy[Message]:
    """Any payload on any of the centre's topics, ids good or bad (no ``+ # /`` or NUL,
    which MQTT itself forbids in a topic name)."""
    ident = st.text(_id_chars, min_size=1, max_size=70)
    latent = st.tuples(st.sampled_from(["latent", "raw"]), ident, ident).map(
        lambda t: f"epic/{deployment}/{t[0]}/fuzzh-{t[1]}/{t[2]}"
    )
    report = st.tuples(st.sampled_from(["status", "heartbeat"]), ident).map(
        lambda t: f"epic/{deployment}/{t[0]}/{t[1]}"
    )
    return st.tuples(st.one_of(latent, report), st.binary(min_size=1, max_size=3000))
