"""`epic broker` and `epic broker credentials` as a user runs them."""

from __future__ import annotations

import json
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

EPIC = shutil.which("epic", path=str(Path(sys.executable).parent)) or "epic"


def epic(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EPIC, *args], capture_output=True, text=True, timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("epic: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_credentials_writes_three_private_files(tmp_path: Path) -> None:
    out = tmp_path / "creds"
    result = epic(
        "broker", "credentials", "--deployment", "site-a", "--devices", "2", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    for name in ("passwd", "acl", "nats-auth.conf", "credentials.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    assert set(json.loads((out / "credentials.json").read_text())) == {"central", "dev-0", "dev-1"}
    assert "topic write epic/site-a/latent/+/dev-1" in (out / "acl").read_text()

    named = epic(
        "broker",
        "credentials",
        "--deployment",
        "site-a",
        "--devices",
        "2",
        "--device-ids",
        "north,south",
        "--out",
        str(tmp_path / "named"),
    )
    assert named.returncode == 0, named.stderr
    assert set(json.loads((tmp_path / "named/credentials.json").read_text())) == {
        "central",
        "north",
        "south",
    }


def test_credentials_bad_arguments_are_one_line_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "c")
    base = ["broker", "credentials", "--deployment", "d", "--out", out]
    assert_one_line_error(epic(*base, "--devices", "0"), "--devices")
    assert_one_line_error(
        epic("broker", "credentials", "--deployment", "a/b", "--devices", "1", "--out", out),
        "--deployment",
        "a/b",
    )
    assert_one_line_error(epic(*base, "--devices", "2", "--device-ids", "a"), "1 ids given")
    assert_one_line_error(epic(*base, "--devices", "2", "--device-ids", "a,b c"), "'b c'")
    assert_one_line_error(epic(*base, "--devices", "1", "--device-ids", "central"), "central")
    assert not Path(out).exists()
    assert epic(*base, "--devices", "1").returncode == 0
    assert_one_line_error(epic(*base, "--devices", "1"), "--overwrite")


def test_broker_refuses_a_bad_users_file_in_one_line(tmp_path: Path) -> None:
    users = tmp_path / "passwd"
    users.write_text("central:plaintext\n")
    assert_one_line_error(epic("broker", "--port", "0", "--users", str(users)), "line 1")
    assert_one_line_error(epic("broker", "--port", "0", "--acl", str(tmp_path / "nope")), "nope")


def test_broker_on_a_taken_port_is_a_one_line_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert_one_line_error(epic("broker", "--port", port), "cannot listen on 127.0.0.1:" + port)
