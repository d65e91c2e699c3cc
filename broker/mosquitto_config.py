"""Mosquitto 2 configuration for an EPIC field broker.

``render_mosquitto_conf(...)`` returns a ``mosquitto.conf``: no anonymous clients, the
password and ACL files that ``epic broker credentials`` writes, persistence on disk (so queued
QoS 1 latents and retained device status survive a restart), a TLS listener for the devices
and the centre, and optionally a plain listener bound to localhost (a centre on the same host,
or tools). ``broker/mosquitto/mosquitto.conf`` is this function's output for the paths in
:data:`FIELD_DEFAULTS`, and the tests run the real Mosquitto with what it renders.

Example::

    from epic.broker.mosquitto_config import render_mosquitto_conf
    text = render_mosquitto_conf(
        password_file="/etc/mosquitto/epic/passwd", acl_file="/etc/mosquitto/epic/acl",
        persistence_location="/var/lib/mosquitto/", cafile="/etc/mosquitto/certs/ca.crt",
        certfile="/etc/mosquitto/certs/server.crt", keyfile="/etc/mosquitto/certs/server.key",
    )
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["FIELD_DEFAULTS", "MAX_PACKET_BYTES", "render_mosquitto_conf"]

# The largest envelope (shared.wire.envelope.MAX_ENVELOPE_BYTES, 16 MiB) plus room for the topic.
MAX_PACKET_BYTES = 16 * 1024 * 1024 + 64 * 1024

FIELD_DEFAULTS: dict[str, Any] = {
    "password_file": "/etc/mosquitto/epic/passwd",
    "acl_file": "/etc/mosquitto/epic/acl",
    "persistence_location": "/var/lib/mosquitto/",
    "cafile": "/etc/mosquitto/certs/ca.crt",
    "certfile": "/etc/mosquitto/certs/server.crt",
    "keyfile": "/etc/mosquitto/certs/server.key",
}


def render_mosquitto_conf(
    *,
    password_file: Path | str,
    acl_file: Path | str,
    persistence_location: Path | str,
    tls_port: int | None = 8883,
    tls_bind: str | None = None,
    cafile: Path | str | None = None,
    certfile: Path | str | None = None,
    keyfile: Path | str | None = None,
    local_port: int | None = 1883,
    user: str | None = None,
    log_dest: str = "syslog",
    autosave_interval_s: int = 60,
    max_queued_messages: int = 10_000,
    persistent_client_expiration: str | None = "14d",
    max_packet_bytes: int = MAX_PACKET_BYTES,
) -> str:
    """The text of a ``mosquitto.conf`` for EPIC (see the module's docstring).

    ``tls_port``: the TLS listener (needs ``cafile``, ``certfile``, ``keyfile``), on all
    addresses unless ``tls_bind``; ``None`` for none. ``local_port``: a plain listener on
    127.0.0.1 only; ``None`` for none. ``user``: whom Mosquitto runs as when started as root
    (its default is ``mosquitto``, which must be able to read the files); ``log_dest``:
    ``syslog``, ``stderr``, ``file PATH``...
    """
    if tls_port is None and local_port is None:
        raise ValueError("no listener: give tls_port, local_port or both")
    tls_files = {"cafile": cafile, "certfile": certfile, "keyfile": keyfile}
    if tls_port is not None and None in tls_files.values():
        missing = ", ".join(name for name, value in tls_files.items() if value is None)
        raise ValueError(f"the TLS listener needs {missing}")
    for port in (tls_port, local_port):
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"port must be 1-65535, got {port}")
    for value in (password_file, acl_file, persistence_location, *tls_files.values()):
        if value is not None and any(c in str(value) for c in "\n\r"):
            raise ValueError(f"a path with a line break: {value!r}")

    location = str(persistence_location)
    if not location.endswith("/"):
        location += "/"  # Mosquitto joins it to the file name as is
    lines = [
        "# Mosquitto 2 configuration for an EPIC field broker.",
        "# Made by broker.mosquitto_config.render_mosquitto_conf; see broker/mosquitto/README.md.",
        "",
        "# One set of rules for every listener.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {password_file}",
        f"acl_file {acl_file}",
        "# Bigger packets are refused (the client is disconnected) before anyone buffers them.",
        f"max_packet_size {max_packet_bytes}",
        "",
        "# Queued QoS 1 latents and retained device status survive a restart.",
        "persistence true",
        f"persistence_location {location}",
        f"autosave_interval {autosave_interval_s}",
        "# A centre that is away keeps its session and queue; latents are a few KB each.",
        f"max_queued_messages {max_queued_messages}",
    ]
    if persistent_client_expiration:
        lines.append(f"persistent_client_expiration {persistent_client_expiration}")
    if user:
        lines += [
            "",
            "# When started as root, run as this user (it must read the files above).",
            f"user {user}",
        ]
    lines += ["", f"log_dest {log_dest}", "log_type error", "log_type warning", "log_type notice"]
    # A client's id is its user name: no device can take over (and empty) the centre's
    # session, or another device's, by connecting with its client id. Mosquitto applies it
    # per listener whatever per_listener_settings says, so each listener repeats it.
    bound_ids = "use_username_as_clientid true"
    if local_port is not None:
        lines += [
            "",
            "# Plain MQTT, this host only.",
            f"listener {local_port} 127.0.0.1",
            bound_ids,
        ]
    if tls_port is not None:
        listener = f"listener {tls_port}" + (f" {tls_bind}" if tls_bind else "")
        lines += [
            "",
            "# Devices and the centre: TLS 1.2 or newer, server certificate from this CA.",
            listener,
            bound_ids,
            f"cafile {cafile}",
            f"certfile {certfile}",
            f"keyfile {keyfile}",
            "tls_version tlsv1.2",
        ]
    return "\n".join(lines) + "\n"
