"""Every sub-command given a missing file or a wrong value: exit 2 and ONE line on stderr,
``epic: error: ...``, naming what is wrong in at most about 200 characters (beside the path
the user gave), never a traceback and never PyTorch's advice to load a file unsafely. Run
in-process through the console script's own ``main`` (the same code path as ``epic``;
tests/test_cli.py runs the installed script itself)."""

from __future__ import annotations

import fractions
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from epic.cli import main
from epic.shared.launcher import free_port

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = str(ROOT / "models" / "epic-lite-5.pt")
WEAK = "short"
MAX_CHARS = 200  # of the line, the paths the test gave it counted as one character
UNSAFE = ("weights_only", "arbitrary code", "add_safe_globals", "Traceback")


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def bad_files(tmp: Path, bundle: Path) -> dict[str, Path]:
    """Checkpoints and bundles a user could hand over by mistake, or receive damaged."""
    good = (ROOT / "models" / "epic-lite-5.pt").read_bytes()
    files = {
        "text": ROOT / "README.md",
        "empty": tmp / "empty.pt",
        "cut": tmp / "cut.pt",
        "foreign": tmp / "foreign.pt",
    }
    files["empty"].write_bytes(b"")
    files["cut"].write_bytes(good[: len(good) // 2])
    torch.save({"weights": fractions.Fraction(1, 3)}, files["foreign"])
    for name in ("central", "edge"):  # a bundle with one part damaged
        broken = tmp / f"bundle-bad-{name}"
        shutil.copytree(bundle, broken)
        part = broken / ("central.pt" if name == "central" else "edge/dev-0.pt")
        part.write_bytes(b"<html>not found</html>")
        files[f"bundle-{name}"] = broken
    return files


def cases(tmp: Path, bundle: Path, taken: int) -> list[tuple[list[str], str]]:
    nope, b = str(tmp / "nope"), str(bundle)
    (tmp / "bad-state.json").write_text("{not json")
    edge = ["edge", "--bundle", b, "--device-id", "dev-0", "--broker", "mqtt://127.0.0.1:1"]
    f = {k: str(v) for k, v in bad_files(tmp, bundle).items()}
    central = ["central", "--port", "0", "--db", str(tmp / "c.sqlite")]
    demo = [
        "demo",
        "--port",
        str(free_port()),
        "--broker-port",
        str(free_port()),
        "--workdir",
        str(tmp / "demo"),
    ]
    return [
        # a checkpoint that is no checkpoint, or a damaged one (PyTorch's own text is ~700
        # characters and ends by advising weights_only=False)
        (["eval", "--checkpoint", f["text"], "--data", str(tmp)], "not a PyTorch checkpoint"),
        (["deploy", "-c", f["text"], "-o", nope], "README.md: not a PyTorch checkpoint"),
        (["deploy", "-c", f["empty"], "-o", nope], "empty or cut short"),
        (["deploy", "-c", f["cut"], "-o", nope], "damaged or cut short"),
        (["deploy", "-c", f["foreign"], "-o", nope], "(fractions.Fraction) besides tensors"),
        (["deploy", "-c", str(tmp), "-o", nope], "is a directory"),
        ([*demo, "--checkpoint", f["text"]], "not a PyTorch checkpoint"),
        ([*central, "--bundle", f["bundle-central"]], "central.pt: not a PyTorch bundle file"),
        (
            [*edge, "--bundle", f["bundle-edge"], "--source", "sim:flatvel-a"],
            "dev-0.pt: not a PyTorch bundle file",
        ),
        # folders, ports, addresses
        (["central", "--bundle", f["text"]], "is a file"),
        ([*central, "--bundle", b, "--port", str(taken)], "the port is in use"),
        ([*central, "--bundle", b, "--host", "no-such-host.invalid"], "no such address"),
        (["demo", "--port", str(taken)], f"port {taken} is in use"),
        (
            [
                "edge",
                "--bundle",
                b,
                "--device-id",
                "dev-0",
                "--broker",
                "127.0.0.1:1883",
                "--source",
                "sim:flatvel-a",
            ],
            "no mqtt:// in front",
        ),
        (["data", "info", nope], "nope: no such folder"),
        (
            ["data", "simulate", "--family", "flatvel-a", "--samples", "0", "--out", nope],
            "--samples",
        ),
        (
            ["train", "--model", "epic", "--data", nope, "--out", f"{nope}.pt", "--epochs", "1"],
            "nope: no such folder",
        ),
        (
            ["train", "--model", "resnet", "--data", nope, "--out", "x.pt", "--epochs", "1"],
            "'resnet' is not one of",
        ),
        (["eval", "--checkpoint", f"{nope}.pt", "--data", str(tmp)], "no such checkpoint file"),
        (["report", "--checkpoint", f"{nope}.pt", "--out", f"{nope}.md"], "--data"),
        (["deploy", "-c", f"{nope}.pt", "-o", nope], "nope.pt: no such checkpoint file"),
        (["deploy", "-c", CHECKPOINT, "-o", nope, "--devices", "7"], "trained for 5 devices"),
        (["broker", "--port", "70000"], "--port"),
        (["broker", "--users", nope], "does not exist"),
        (
            ["broker", "--port", "0", "--state", str(tmp / "bad-state.json")],
            "bad-state.json: cannot read the broker state",
        ),
        (
            ["broker", "credentials", "--deployment", "a$b", "--devices", "2", "--out", nope],
            "deployment 'a$b' is not",
        ),
        (
            [
                "broker",
                "credentials",
                "--deployment",
                "d",
                "--devices",
                "2",
                "--device-ids",
                "a,b,c",
                "--out",
                nope,
            ],
            "3 ids given for 2 devices",
        ),
        (
            [
                "edge",
                "--bundle",
                nope,
                "--device-id",
                "dev-0",
                "--broker",
                "mqtt://x:1",
                "--source",
                "sim:flatvel-a",
            ],
            "nope: no such folder",
        ),
        (
            [
                "edge",
                "--bundle",
                b,
                "--device-id",
                "dev-0",
                "--broker",
                "http://x:1",
                "--source",
                "sim:flatvel-a",
            ],
            "'http://x:1' is not a broker URL",
        ),
        ([*edge, "--source", "sim:flatvel-z"], "unknown family"),
        ([*edge, "--source", f"segy:{nope}.sgy"], "no such SEG-Y file"),
        ([*edge, "--source", "sim:flatvel-a", "--tls-ca", nope], "no such CA file"),
        (
            [
                "edge",
                "--bundle",
                b,
                "--device-id",
                "dev-9",
                "--broker",
                "mqtt://127.0.0.1:1",
                "--source",
                "sim:flatvel-a",
            ],
            "dev-9: no such device",
        ),
        (["central", "--bundle", nope], "nope: no such folder"),
        (["central", "--bundle", b, "--broker", "http://x"], "'http://x' is not a broker URL"),
        (["central", "--bundle", b, "--deadline-ms", "-1"], "--deadline-ms"),
        (["central", "--bundle", b, "--api-token", WEAK], "make one: openssl rand -hex 32"),
        (
            [
                "central",
                "--bundle",
                b,
                "--min-devices",
                "9",
                "--port",
                "0",
                "--db",
                str(tmp / "c.sqlite"),
            ],
            "--min-devices 9 is more than the deployment's 5",
        ),
        (
            ["central", "--bundle", b, "--db", "/proc/nope/c.sqlite", "--port", "0"],
            "cannot open the map store",
        ),
        (["demo", "--edges", "0"], "--edges"),
        (["demo", "--checkpoint", f"{nope}.pt"], "no such checkpoint file"),
        (["bench", "--models", "resnet"], "resnet: unknown model"),
        (["bench", "--link", "5g"], "'5g' is not one of"),
    ]


def test_every_command_fails_with_one_clear_line(
    bundle: Path, tmp_path: Path, taken_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    failures = []
    for argv, fragment in cases(tmp_path, bundle, taken_port):
        with pytest.raises(SystemExit) as ended:
            main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        line = err[0] if err else ""
        short = line.replace(str(tmp_path), "T").replace(str(ROOT), "R")
        ok = (
            ended.value.code == 2
            and len(err) == 1
            and line.startswith("epic: error: ")
            and fragment in line
            and len(short) <= MAX_CHARS
            and not any(word in line for word in UNSAFE)
        )
        if not ok:
            failures.append(f"epic {' '.join(argv)} -> exit {ended.value.code}: {err}")
    assert not failures, "\n".join(failures)
