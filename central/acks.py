"""Manual PUBACKs for the centre's MQTT connection: a latent is acknowledged to the broker
only once it is durable (``epic.central.pending``), so the broker keeps, and sends again, what
a killed centre had not yet written.

- ``manual_acks(client)`` turns paho's automatic PUBACK off on an ``aiomqtt.Client`` and
  returns paho's ``ack``.
- ``AckLedger`` keeps one connection's QoS 1 messages in the order they came and sends
  their PUBACKs in that order as each is done with: MQTT 3.1.1 [MQTT-4.6.0-2] wants a
  client's PUBACKs in the order of the PUBLISHes.

Threads: aiomqtt drives paho from the event loop (its socket reader is a loop callback that
calls ``loop_read``, which calls ``on_message``), so messages are registered, and ``ack``
is called, on the loop's thread, as paho's own automatic ack is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import aiomqtt
import paho.mqtt.client as paho

__all__ = ["AckLedger", "Ticket", "manual_acks"]

AckSender = Callable[[int, int], object]


def manual_acks(client: aiomqtt.Client) -> AckSender:
    """Make ``client`` leave PUBACKs to us (before it connects) and return paho's ``ack``.

    aiomqtt 2.5 has no manual acknowledgement, so we reach the paho client it wraps through
    its private ``_client`` (paho-mqtt 2.2: ``manual_ack_set`` and ``ack(mid, qos)``). If a
    new aiomqtt moves it, this raises rather than fall back to acknowledging on receipt,
    which would silently bring back the loss this exists to prevent."""
    inner = getattr(client, "_client", None)
    if not (
        isinstance(inner, paho.Client)
        and callable(getattr(inner, "manual_ack_set", None))
        and callable(getattr(inner, "ack", None))
    ):
        raise RuntimeError(
            f"aiomqtt {getattr(aiomqtt, '__version__', '?')} no longer holds a paho-mqtt client "
            "with manual acks in ._client: the centre cannot acknowledge a latent only once "
            "it is stored (central/acks.py). Use aiomqtt 2.5 or adapt manual_acks()."
        )
    inner.manual_ack_set(True)
    return inner.ack


@dataclass(slots=True)
class Ticket:
    """One QoS 1 message waiting for its PUBACK."""

    mid: int
    qos: int
    done: bool = False


class AckLedger:
    """One connection's PUBACKs, sent in arrival order once each message is done with.

    ``received`` is called for every message as paho hands it to aiomqtt's incoming queue
    (``queued=False``: the queue was full and the message is dropped, counted; acknowledged
    in its turn, since a hole would hold back every later ack). The read loop takes its
    message's ticket with ``claim`` (same order: one FIFO queue, one reader) and calls
    ``done`` once the message is handled (rejected, applied, or written to ``pending``).

    Its size is bounded by what the broker lets be in flight to us (aiomqtt's incoming
    queue, 10,000, plus the messages being written); nothing here waits on the network."""

    def __init__(self) -> None:
        self.send: AckSender | None = None  # paho's ack, set by the consumer once it exists
        self.acked = 0
        self._order: deque[Ticket] = deque()  # every QoS 1 message not yet acknowledged
        self._unread: deque[Ticket] = deque()  # those still in aiomqtt's queue
        self._closed = False

    @property
    def waiting(self) -> int:
        return len(self._order)

    def received(self, mid: int, qos: int, queued: bool) -> None:
        if qos == 0:
            return  # no acknowledgement in QoS 0
        ticket = Ticket(mid, qos, done=not queued)
        self._order.append(ticket)
        if queued:
            self._unread.append(ticket)
        else:
            self._release()

    def claim(self, mid: int, qos: int) -> Ticket | None:
        """The ticket of the message the read loop took, ``None`` for QoS 0."""
        if qos == 0:
            return None
        ticket = self._unread.popleft()
        if ticket.mid != mid:  # the queue is FIFO with one reader: this would be our bug
            raise RuntimeError(f"ack ledger out of step: read mid {mid}, expected {ticket.mid}")
        return ticket

    def done(self, ticket: Ticket | None) -> None:
        if ticket is not None:
            ticket.done = True
            self._release()

    def close(self) -> None:
        """The connection is gone: its acks would go nowhere (the broker sends the messages
        again, with DUP, when the session reconnects)."""
        self._closed = True
        self._order.clear()
        self._unread.clear()

    def _release(self) -> None:
        order = self._order
        while order and order[0].done and not self._closed:
            ticket = order.popleft()
            if self.send is not None:
                self.send(ticket.mid, ticket.qos)
            self.acked += 1
