"""EPIC's MQTT topics: the one place they are spelt, built, parsed and matched.

The layout (docs/architecture.md, "The topic tree")::

    epic/<deployment>/latent/<sample>/<device>   a device's latent envelope (QoS 1)
    epic/<deployment>/raw/<sample>/<device>      its raw block (the centralized baseline)
    epic/<deployment>/status/<device>            its retained online/offline JSON
    epic/<deployment>/heartbeat/<device>         its counters, JSON
    epic/<deployment>/map/<sample>               the centre's map summary, JSON

``Topic`` and ``Wildcard`` are modelled on aiomqtt's (``aiomqtt/topic.py``): a topic name one
can publish to, and a subscription filter that may hold ``+`` and ``#``. ``matches`` works on
filters as well as names (a filter matches another when every topic it matches does), which
is what an ACL needs to decide a subscription.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from epic.shared.wire.ids import check_id

__all__ = [
    "FROM_EDGES",
    "HEARTBEAT",
    "KINDS",
    "LATENT",
    "MAP",
    "RAW",
    "ROOT",
    "STATUS",
    "Address",
    "Topic",
    "TopicError",
    "Wildcard",
    "envelope_topic",
    "heartbeat_topic",
    "latent_topic",
    "make_topic",
    "map_topic",
    "parse_topic",
    "status_topic",
    "subtree",
    "topic_filter",
]

MAX_TOPIC_LENGTH = 65535  # MQTT's limit (a two-byte length)
ROOT = "epic"
LATENT, RAW, STATUS, HEARTBEAT, MAP = "latent", "raw", "status", "heartbeat", "map"
# The id levels after each kind, in order.
KINDS: dict[str, tuple[str, ...]] = {
    LATENT: ("sample", "device"),
    RAW: ("sample", "device"),
    STATUS: ("device",),
    HEARTBEAT: ("device",),
    MAP: ("sample",),
}
FROM_EDGES = (LATENT, RAW, STATUS, HEARTBEAT)  # what devices write and the centre reads


class TopicError(ValueError):
    """A topic (or filter) that is malformed or not one of EPIC's.

    ``deployment`` and ``sender`` say what a malformed topic claims, so a receiver can still
    count it against someone: its deployment level and its last level (where every topic a
    device writes names the device), when it has EPIC's root, a deployment, a kind and at
    least one id; else None.
    """

    def __init__(self, message: str, topic: str = "") -> None:
        super().__init__(message)
        self.topic = topic
        levels = topic.split("/")
        claims = len(levels) >= 4 and levels[0] == ROOT
        self.deployment = levels[1] if claims else None
        self.sender = levels[-1] if claims else None


@dataclass(frozen=True)
class Wildcard:
    """An MQTT subscription filter: levels split by ``/``, where a level ``+`` stands for any
    one level and a last level ``#`` for any number (zero included)."""

    value: str

    def __str__(self) -> str:
        return self.value

    def __post_init__(self) -> None:
        if not isinstance(self.value, str):
            raise TypeError(f"a topic filter is a str, not {type(self.value).__name__}")
        if (
            not 0 < len(self.value) <= MAX_TOPIC_LENGTH
            or "#/" in self.value
            or any(len(level) > 1 and ("+" in level or "#" in level) for level in self.levels)
        ):
            raise TopicError(f"{self.value!r} is not an MQTT topic filter", self.value)

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(self.value.split("/"))

    def matches(self, wildcard: str | Wildcard) -> bool:
        """True when every topic this one matches also matches ``wildcard``.

        For a topic name that is aiomqtt's ``Topic.matches``; for a filter it says whether
        ``wildcard`` covers it, as an ACL grant must cover a subscription. (No ``$share/``
        handling: EPIC uses no shared subscriptions.)
        """
        asked = self.levels
        granted = Wildcard(str(wildcard)).levels
        for i, level in enumerate(granted):
            if level == "#":
                return True  # `a/#` matches `a` itself as well (MQTT 3.1.1, 4.7.1.2)
            if i >= len(asked):
                return False
            if level == "+":
                if asked[i] == "#":
                    return False
                continue
            if asked[i] != level:  # also refuses a wildcard asked where the filter names one
                return False
        return len(asked) == len(granted)


@dataclass(frozen=True)
class Topic(Wildcard):
    """An MQTT topic name: a filter without wildcards, one can publish to it."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if "+" in self.value or "#" in self.value:
            why = "is not an MQTT topic name (it has + or #)"
            raise TopicError(f"{self.value!r} {why}", self.value)


@dataclass(frozen=True)
class Address:
    """The parts of one EPIC topic; ``sample`` and ``device`` are None where the kind has none
    (see ``KINDS``)."""

    deployment: str
    kind: str
    sample: str | None = None
    device: str | None = None

    @property
    def topic(self) -> Topic:
        return make_topic(self.deployment, self.kind, sample=self.sample, device=self.device)


def _shape(kind: str) -> str:
    return "/".join([ROOT, "<deployment>", kind, *(f"<{name}>" for name in KINDS[kind])])


def _id_levels(kind: str, sample: str | None, device: str | None, *, wild: bool) -> list[str]:
    """The levels after ``kind``: checked ids, or with ``wild`` a ``+`` for each one left out."""
    if kind not in KINDS:
        raise TopicError(f"no topic kind {kind!r}: one of {', '.join(KINDS)}")
    given = {"sample": sample, "device": device}
    extra = [n for n, value in given.items() if value is not None and n not in KINDS[kind]]
    missing = [] if wild else [n for n in KINDS[kind] if given[n] is None]
    if extra or missing:
        raise TopicError(
            f"a {kind} topic is {_shape(kind)} (given: sample {sample!r}, device {device!r})"
        )
    levels = []
    for name in KINDS[kind]:
        value = given[name]
        levels.append("+" if value is None else check_id(value, f"{name} id", TopicError))
    return levels


def make_topic(
    deployment: str, kind: str, *, sample: str | None = None, device: str | None = None
) -> Topic:
    """The topic of ``kind`` for these ids. ``TopicError`` for an unknown kind, an id the kind
    lacks or does not take, or an id that is not ``[A-Za-z0-9_.-]{1,64}``."""
    ids = _id_levels(kind, sample, device, wild=False)
    return Topic("/".join([ROOT, check_id(deployment, "deployment", TopicError), kind, *ids]))


def envelope_topic(deployment: str, kind: str, sample: str, device: str) -> Topic:
    """``epic/<deployment>/<kind>/<sample>/<device>``, ``kind`` being latent or raw."""
    return make_topic(deployment, kind, sample=sample, device=device)


def latent_topic(deployment: str, sample: str, device: str) -> Topic:
    return make_topic(deployment, LATENT, sample=sample, device=device)


def status_topic(deployment: str, device: str) -> Topic:
    return make_topic(deployment, STATUS, device=device)


def heartbeat_topic(deployment: str, device: str) -> Topic:
    return make_topic(deployment, HEARTBEAT, device=device)


def map_topic(deployment: str, sample: str) -> Topic:
    return make_topic(deployment, MAP, sample=sample)


def topic_filter(
    deployment: str, kind: str, *, sample: str | None = None, device: str | None = None
) -> Wildcard:
    """The topics of ``kind`` in ``deployment``, with ``+`` for each id left out: by default
    every such topic (``epic/d/latent/+/+``); ``device=`` one device's (``.../+/dev-1``)."""
    ids = _id_levels(kind, sample, device, wild=True)
    return Wildcard("/".join([ROOT, check_id(deployment, "deployment", TopicError), kind, *ids]))


def subtree(deployment: str, kind: str | None = None) -> Wildcard:
    """Everything in ``deployment`` (``epic/<deployment>/#``), or of one kind in it."""
    levels = [ROOT, check_id(deployment, "deployment", TopicError)]
    if kind is not None:
        if kind not in KINDS:
            raise TopicError(f"no topic kind {kind!r}: one of {', '.join(KINDS)}")
        levels.append(kind)
    return Wildcard("/".join([*levels, "#"]))


def parse_topic(topic: str | Wildcard, *, check_ids: bool = True) -> Address:
    """The parts of a concrete EPIC topic; ``TopicError`` when it is not one.

    ``check_ids=False`` checks the layout only (root, kind, number of levels), for a receiver
    that checks and counts a bad id in its own way.
    """
    text = str(topic)
    levels = text.split("/")
    if len(levels) < 4 or levels[0] != ROOT:
        raise TopicError(f"topic {text!r} is not {ROOT}/<deployment>/<kind>/<id>...", text)
    deployment, kind, ids = levels[1], levels[2], levels[3:]
    if kind not in KINDS:
        raise TopicError(f"topic {text!r}: no kind {kind!r} (one of {', '.join(KINDS)})", text)
    if len(ids) != len(KINDS[kind]):
        raise TopicError(f"topic {text!r}: a {kind} topic is {_shape(kind)}", text)
    parts = dict(zip(KINDS[kind], ids, strict=True))
    if check_ids:
        bad = partial(_topic_error, text)
        check_id(deployment, "deployment", bad)
        for name, value in parts.items():
            check_id(value, f"{name} id", bad)
    return Address(deployment, kind, parts.get("sample"), parts.get("device"))


def _topic_error(topic: str, message: str) -> TopicError:
    return TopicError(f"topic {topic!r}: {message}", topic)
