"""Two fixes to amqtt 0.12's ``Broker``, kept to the smallest overrides that do the job.

1. On every CONNECT, amqtt walks ``Broker._subscriptions`` (every client's filters) and sends
   the new client each retained message matching any of them, at QoS 0
   (``Broker._handle_client_session``). A device that subscribed to nothing would receive,
   say, every other device's retained status. :class:`EpicBroker` sends retained messages only
   for filters the client itself holds, which is what a resumed persistent session is owed.
2. amqtt iterates ``_subscriptions`` (on connect, and per broadcast in ``_run_broadcast``) with
   ``await`` inside the loop, while other tasks add or drop entries; the loop then dies with
   "dictionary changed size during iteration" and the connection, or the message, is lost.
   :class:`_SnapshotDict` makes those loops walk a snapshot instead.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator
from typing import Any

from amqtt.broker import Broker
from amqtt.session import Session

__all__ = ["EpicBroker"]


class _SnapshotDict(dict[str, Any]):
    """A dict whose iteration walks a copy, so the dict may change while a loop awaits."""

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))

    def items(self) -> ItemsView[str, Any]:  # type: ignore[override]
        return dict(super().items()).items()


class EpicBroker(Broker):
    """amqtt's broker with the two fixes above; everything else is amqtt's own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._subscriptions = _SnapshotDict()

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        holders = self._subscriptions.get(subscription[0], [])
        if not any(held.client_id == session.client_id for held, _ in holders):
            return
        await super()._publish_retained_messages_for_subscription(subscription, session)
