"""EPIC's field users and topic rules for a NATS cluster (MQTT with JetStream), from the same
rules as Mosquitto's ACL (``epic.shared.wire.access``).

NATS checks MQTT clients against NATS subjects, not topics: ``a/b`` is ``a.b``, ``+`` is ``*``,
``#`` is ``>``, and a ``.`` inside a level is ``//`` (the server's own conversion, since NATS
2.10; 2.9 refuses a topic with a ``.``, so there sample ids must not hold one). Each user
may connect over MQTT only. A user with QoS 1 subscriptions (the centre) also needs to
subscribe to ``$MQTT.sub.>``: the server delivers a JetStream durable's messages there.
Passwords are bcrypt hashes, the only hash NATS reads.

The file is an ``authorization`` block for ``include`` in every node's configuration (NATS
reads an include relative to the including file), so all nodes hold the same users.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import bcrypt

from epic.broker.ids import check_id
from epic.shared.wire import centre_access, device_access

__all__ = ["mqtt_filter_to_subject", "mqtt_filter_to_subjects", "render_nats_auth"]

DEFAULT_BCRYPT_ROUNDS = 11  # NATS's own `nats server passwd` default
QOS1_DELIVERY = "$MQTT.sub.>"


def mqtt_filter_to_subject(topic: object) -> str:
    """An MQTT topic filter as the NATS subject that the server checks permissions on."""
    levels = []
    for level in str(topic).split("/"):
        if not level:
            raise ValueError(f"{topic!r}: an empty level has no NATS subject")
        levels.append({"+": "*", "#": ">"}.get(level, level.replace(".", "//")))
    return ".".join(levels)


def mqtt_filter_to_subjects(topic: object) -> list[str]:
    """The subjects a grant on an MQTT filter needs: ``a/#`` matches ``a`` itself as well,
    and the server subscribes an MQTT client to both ``a`` and ``a.>``."""
    subject = mqtt_filter_to_subject(topic)
    if subject == ">" or not subject.endswith(".>"):
        return [subject]
    return [subject[:-2], subject]


def _subjects(filters: Sequence[object]) -> list[str]:
    return [s for f in filters for s in mqtt_filter_to_subjects(f)]


def _user(
    name: str,
    password: str,
    publish: Sequence[str],
    subscribe: Sequence[str],
    rounds: int,
) -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()
    deny_all = {"deny": [">"]}
    permissions = {
        "publish": {"allow": list(publish)} if publish else deny_all,
        "subscribe": {"allow": list(subscribe)} if subscribe else deny_all,
    }
    # JSON is valid NATS configuration syntax, and quotes every string it holds
    fields = {
        "user": name,
        "password": hashed,
        "allowed_connection_types": ["MQTT"],
        "permissions": permissions,
    }
    return "    " + json.dumps(fields)


def render_nats_auth(
    deployment: str,
    passwords: Mapping[str, str],
    central: str,
    *,
    rounds: int = DEFAULT_BCRYPT_ROUNDS,
) -> str:
    """``authorization { users = [...] }`` for the centre (``central``) and every other user
    of ``passwords`` as a device of ``deployment``."""
    check_id(deployment, "deployment")
    centre = centre_access(deployment)
    users = [
        _user(
            central,
            passwords[central],
            _subjects(centre.write),
            [*_subjects(centre.read), QOS1_DELIVERY],
            rounds,
        )
    ]
    for device, password in passwords.items():
        if device == central:
            continue
        access = device_access(deployment, check_id(device, "device id"))
        users.append(_user(device, password, _subjects(access.write), [], rounds))
    return (
        f"# EPIC deployment {deployment}: written by `epic broker credentials`.\n"
        '# Include it in every node\'s configuration: include "nats-auth.conf"\n'
        "authorization {\n  users = [\n" + "\n".join(users) + "\n  ]\n}\n"
    )
