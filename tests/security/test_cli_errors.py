"""Every sub-command given a missing file or a wrong value: exit 2 and ONE line on stderr,
``epic: error: ...``, naming what is wrong; never a traceback. Run in-process through the
console script's own ``main`` (the same code path as ``epic``; tests/test_cli.py runs the
installed script itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from epic.cli import main

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = str(ROOT / "models" / "epic-lite-5.pt")
WEAK = "short"


def cases(tmp: Path, bundle: Path) -> list[tuple[list[str], str]]:
    nope, b = str(tmp / "nope"), str(bundle)
    (tmp / "bad-state.json").write_text("{not json")
    edge = ["edge", "--bundle", b, "--device-id", "dev-0", "--broker", "mqtt://127.0.0.1:1"]
    return [
        (["data", "info", nope], "nope: no such folder"),
        (["data", "simulate", "--family", "flatvel-a", "--samples", "0", "--out", nope],
         "--samples"),
        (["train", "--model", "epic", "--data", nope, "--out", f"{nope}.pt", "--epochs", "1"],
         "nope: no such folder"),
        (["train", "--model", "resnet", "--data", nope, "--out", "x.pt", "--epochs", "1"],
         "'resnet' is not one of"),
        (["eval", "--checkpoint", f"{nope}.pt", "--data", str(tmp)], "no such checkpoint file"),
        (["report", "--checkpoint", f"{nope}.pt", "--out", f"{nope}.md"], "--data"),
        (["deploy", "-c", f"{nope}.pt", "-o", nope], "nope.pt: no such checkpoint file"),
        (["deploy", "-c", CHECKPOINT, "-o", nope, "--devices", "7"], "trained for 5 devices"),
        (["broker", "--port", "70000"], "--port"),
        (["broker", "--users", nope], "does not exist"),
        (["broker", "--port", "0", "--state", str(tmp / "bad-state.json")],
         "bad-state.json: cannot read the broker state"),
        (["broker", "credentials", "--deployment", "a$b", "--devices", "2", "--out", nope],
         "deployment 'a$b' is not"),
        (["broker", "credentials", "--deployment", "d", "--devices", "2", "--device-ids",
          "a,b,c", "--out", nope], "3 ids given for 2 devices"),
        (["edge", "--bundle", nope, "--device-id", "dev-0", "--broker", "mqtt://x:1",
          "--source", "sim:flatvel-a"], "no manifest.json"),
        (["edge", "--bundle", b, "--device-id", "dev-0", "--broker", "http://x:1",
          "--source", "sim:flatvel-a"], "'http://x:1': must look like mqtt://"),
        ([*edge, "--source", "sim:flatvel-z"], "unknown family"),
        ([*edge, "--source", f"segy:{nope}.sgy"], "no such SEG-Y file"),
        ([*edge, "--source", "sim:flatvel-a", "--tls-ca", nope], "no such CA file"),
        (["edge", "--bundle", b, "--device-id", "dev-9", "--broker", "mqtt://127.0.0.1:1",
          "--source", "sim:flatvel-a"], "dev-9: no such device"),
        (["central", "--bundle", nope], "no manifest.json"),
        (["central", "--bundle", b, "--broker", "http://x"], "must start with mqtt://"),
        (["central", "--bundle", b, "--deadline-ms", "-1"], "--deadline-ms"),
        (["central", "--bundle", b, "--api-token", WEAK], "API token must be at least 16"),
        (["central", "--bundle", b, "--min-devices", "9", "--port", "0", "--db",
          str(tmp / "c.sqlite")], "--min-devices 9 is more than the deployment's 5"),
        (["central", "--bundle", b, "--db", "/proc/nope/c.sqlite", "--port", "0"],
         "cannot open the map store"),
        (["demo", "--edges", "0"], "--edges"),
        (["demo", "--checkpoint", f"{nope}.pt"], "no such checkpoint file"),
        (["bench", "--models", "resnet"], "resnet: unknown model"),
        (["bench", "--link", "5g"], "'5g' is not one of"),
    ]  # fmt: skip


def test_every_command_fails_with_one_clear_line(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failures = []
    for argv, fragment in cases(tmp_path, bundle):
        with pytest.raises(SystemExit) as ended:
            main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        ok = (
            ended.value.code == 2
            and len(err) == 1
            and err[0].startswith("epic: error: ")
            and fragment in err[0]
        )
        if not ok:
            failures.append(f"epic {' '.join(argv)} -> exit {ended.value.code}: {err}")
    assert not failures, "\n".join(failures)
