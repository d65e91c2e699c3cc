"""Credentials, ACL text, password hashes and the Mosquitto config, without a broker."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest

from epic.broker.acl import parse_acl, render_acl, topic_covered
from epic.broker.credentials import write_credentials
from epic.broker.mosquitto_config import FIELD_DEFAULTS, render_mosquitto_conf
from epic.broker.passwords import hash_password, is_mosquitto_hash, verify_password
from epic.shared.errors import BrokerFileError

REPO = Path(__file__).resolve().parents[2]


def test_hash_matches_pbkdf2_sha512_by_hand() -> None:
    salt = bytes(range(12))
    encoded = hash_password("pw", iterations=101, salt=salt)
    # The digest of mosquitto's format, computed independently of broker.passwords.
    digest = hashlib.pbkdf2_hmac("sha512", b"pw", salt, 101)
    assert (
        encoded == f"$7$101${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    )
    assert verify_password("pw", encoded) and not verify_password("pW", encoded)
    for bad in ("$6$abc$def", "$7$x$AAAA$AAAA", "$7$101$!!$AAAA", encoded[:-8], ""):
        assert not is_mosquitto_hash(bad)
        assert not verify_password("pw", bad)


def test_write_credentials_files_are_private_and_consistent(tmp_path: Path) -> None:
    out = tmp_path / "site"
    files = write_credentials(out, "north-1", ["a", "b"])
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for path in (files.passwd, files.acl, files.credentials):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    passwords = json.loads(files.credentials.read_text())
    assert list(passwords) == ["central", "a", "b"]
    assert len(set(passwords.values())) == 3
    assert all(len(p) == 32 for p in passwords.values())
    hashes = dict(line.split(":", 1) for line in files.passwd.read_text().splitlines())
    assert all(verify_password(passwords[user], hashes[user]) for user in passwords)
    with pytest.raises(BrokerFileError, match="exists; pass --overwrite"):
        write_credentials(out, "north-1", ["a", "b"])
    again = write_credentials(out, "north-1", ["a", "b"], overwrite=True)
    assert again.passwords != files.passwords


@pytest.mark.parametrize(
    ("deployment", "devices", "message"),
    [
        ("bad/dep", ["a"], "deployment 'bad/dep'"),
        ("d", [], "at least one device"),
        ("d", ["a b"], "device id 'a b'"),
        ("d", ["x" * 65], "device id"),
        ("d", ["central"], "the centre's user name"),
        ("d", ["a", "a"], "listed twice"),
    ],
)
def test_write_credentials_refuses_bad_ids(
    tmp_path: Path, deployment: str, devices: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        write_credentials(tmp_path / "x", deployment, devices)
    assert not (tmp_path / "x").exists()


def test_rendered_acl_reads_back_with_the_field_rules(tmp_path: Path) -> None:
    path = tmp_path / "acl"
    path.write_text(render_acl("d", ["dev-0", "dev-1"]))
    acl = parse_acl(path)
    assert acl.allows("dev-0", "epic/d/latent/s9/dev-0", write=True)
    assert acl.allows("dev-0", "epic/d/heartbeat/dev-0", write=True)
    assert not acl.allows("dev-0", "epic/d/latent/s9/dev-1", write=True)
    assert not acl.allows("dev-0", "epic/d/latent/s9/dev-0", write=False)
    assert acl.allows("central", "epic/d/#", write=False)
    assert not acl.allows("central", "#", write=False)
    assert not acl.allows("central", "epic/d/latent/s1/dev-0", write=True)
    assert acl.allows("central", "epic/d/map/s1", write=True)
    assert not acl.allows(None, "epic/d/map/s1", write=False)
    assert not acl.allows("stranger", "epic/d/map/s1", write=False)


def test_acl_deny_wins_and_filters_must_be_covered(tmp_path: Path) -> None:
    path = tmp_path / "acl"
    path.write_text("topic read public/#\nuser u\ntopic a/#\ntopic deny a/secret/#\n")
    acl = parse_acl(path)
    assert acl.allows(None, "public/x", write=False) and not acl.allows(
        None, "public/x", write=True
    )
    assert acl.allows("u", "a/b", write=True) and acl.allows("u", "a", write=False)
    assert not acl.allows("u", "a/secret/x", write=False)
    assert topic_covered("a/+/c", "a/+/c") and not topic_covered("a/#", "a/+")
    assert not topic_covered("+/b", "a/b") and topic_covered("a/b/c", "a/+/#")


def test_shipped_mosquitto_conf_is_the_renderers_output() -> None:
    shipped = (REPO / "broker/mosquitto/mosquitto.conf").read_text()
    assert shipped == render_mosquitto_conf(**FIELD_DEFAULTS)
    for line in ("allow_anonymous false", "persistence true", "tls_version tlsv1.2"):
        assert line in shipped.splitlines()


def test_render_mosquitto_conf_refuses_incomplete_settings() -> None:
    base = {"password_file": "p", "acl_file": "a", "persistence_location": "/x"}
    with pytest.raises(ValueError, match="needs cafile, certfile, keyfile"):
        render_mosquitto_conf(**base)
    with pytest.raises(ValueError, match="no listener"):
        render_mosquitto_conf(**base, tls_port=None, local_port=None)
    plain = render_mosquitto_conf(**base, tls_port=None, local_port=1884)
    assert "listener 1884 127.0.0.1" in plain and "cafile" not in plain
