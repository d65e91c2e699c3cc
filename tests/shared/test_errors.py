"""One root for the errors a user can cause: every kind is a ``UserError`` (still a
``ValueError`` where it was one), and ``epic`` ends any of them in one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from epic.central.listener import ListenError
from epic.central.truth import open_truth
from epic.cli import main
from epic.edge.connection import BrokerAddressError, BrokerEndpoint
from epic.shared.errors import BrokerFileError, ConfigError, DataError, OptionError, UserError
from epic.shared.launcher import LaunchError
from epic.shared.torchfile import UnreadableFile
from epic.shared.wire import EnvelopeError

VALUE_ERRORS = [
    DataError("maps/model1.npy", "holds no maps"),
    UnreadableFile("run.pt", "not a PyTorch checkpoint"),
    BrokerFileError("passwd", "no users in the file"),
    ConfigError("unknown preset 'huge'", "--preset"),
    EnvelopeError("bad-id", "device id '' is not [A-Za-z0-9_.-]{1,64}"),
    OptionError("--rate", "-1 must be >= 0"),
    BrokerAddressError("'x' is not a broker URL (no mqtt:// in front)"),
    ListenError("127.0.0.1:80", "the port is in use"),
]


@pytest.mark.parametrize("error", VALUE_ERRORS, ids=lambda e: type(e).__name__)
def test_every_kind_is_a_user_error_and_still_a_value_error(error: Exception) -> None:
    assert isinstance(error, UserError)
    assert isinstance(error, ValueError)
    assert "\n" not in str(error)


def test_a_part_that_did_not_start_is_a_user_error_and_still_a_runtime_error() -> None:
    error = LaunchError("central: no /health after 30 s; log demo-run/logs/central.log")
    assert isinstance(error, UserError) and isinstance(error, RuntimeError)


def test_an_option_keeps_what_it_names_as_written() -> None:
    # DataError's Path would fold "mqtt://h" into "mqtt:/h"; an option value is not a path.
    assert str(OptionError("mqtt://h:1/", "refused")) == "mqtt://h:1/: refused"
    assert str(BrokerAddressError("why")) == "--broker: why"


def test_a_bad_option_is_not_bad_data() -> None:
    """DataError means a file or folder on disk; a value the user typed is an OptionError."""
    with pytest.raises(BrokerAddressError) as bad_url:
        BrokerEndpoint.parse("http://x:1")
    assert not isinstance(bad_url.value, DataError)
    with pytest.raises(OptionError, match="truth must be sim:FAMILY") as bad_spec:
        open_truth("openfwi:/data")
    assert not isinstance(bad_spec.value, DataError)


def _run_credentials(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    error: Exception,
) -> tuple[int | str | None, list[str]]:
    """``epic broker credentials`` with its work replaced by raising ``error``."""
    from epic.broker import credentials

    def refuse(*_: object, **__: object) -> None:
        raise error

    monkeypatch.setattr(credentials, "write_credentials", refuse)
    argv = ["broker", "credentials", "--deployment", "d", "--devices", "2", "-o", str(tmp_path)]
    capsys.readouterr()
    with pytest.raises(SystemExit) as ended:
        main(argv)
    return ended.value.code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (UserError("two\n  lines"), "epic: error: two lines"),
        (DataError("out/passwd", "exists"), "epic: error: out/passwd: exists"),
        (OptionError("--devices", "3 ids for 2"), "epic: error: --devices: 3 ids for 2"),
        (BrokerFileError("acl", "line 2: bad"), "epic: error: acl: line 2: bad"),
    ],
    ids=["UserError", "DataError", "OptionError", "BrokerFileError"],
)
def test_a_user_error_in_a_command_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    error: Exception,
    line: str,
) -> None:
    code, lines = _run_credentials(monkeypatch, capsys, tmp_path, error)
    assert code == 2
    assert lines == [line]


@pytest.mark.parametrize(
    ("option", "line"),
    [
        ("--devices", "epic: error: Invalid value for --devices: too few"),
        (None, "epic: error: too few"),
    ],
)
def test_a_config_error_blames_its_option_and_points_to_help(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    option: str | None,
    line: str,
) -> None:
    """Any command's ConfigError reads as click's own bad value, as the training, scoring and
    compression commands always printed it."""
    error = ConfigError("too few", option)
    code, lines = _run_credentials(monkeypatch, capsys, tmp_path, error)
    assert code == 2
    assert lines == [f"{line} (see `epic broker credentials --help`)"]
