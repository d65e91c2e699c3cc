"""Every command's ``--help`` at 80 columns: nothing wider, no Python type names as value
labels, every default visible and whole, every choice listed, and the command lists never
cut with "...". Walks the real command tree, so a new command is checked too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main

from epic.cli import app, main
from epic.helptext import tidy

COLUMNS = 80


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


TREE = tidy(typer.main.get_command(app))
COMMANDS = list(_commands(TREE))


def _help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        main([*path, "--help"])
    except SystemExit as ended:
        assert ended.code in (0, None)
    return capsys.readouterr().out


@pytest.fixture(autouse=True)
def _eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(COLUMNS))


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "epic")
def test_help_reads_cleanly_at_80_columns(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(path, capsys)
    wide = [line for line in text.splitlines() if len(line) > COLUMNS]
    assert not wide, wide
    for label in ("<bool>", "list[", " range>", "…", "Path]"):
        assert label not in text, f"{label!r} in the help of epic {' '.join(path)}"
    if "Commands:" in text:  # one entry per sub-command, none cut short
        listing = text.split("Commands:", 1)[1]
        assert not re.search(r"\.\.\.$", listing, re.M), listing
    # A hyphenated word (a default such as demo-run) is never split at its hyphen.
    assert not re.search(r"\w-$", text, re.M), text


@pytest.mark.parametrize(
    ("path", "option"),
    [(p, o) for p, c in COMMANDS for o in c.params if o.name != "help"],
    ids=lambda x: " ".join(x) if isinstance(x, tuple) else x.name,
)
def test_every_default_and_choice_is_shown(
    path: tuple[str, ...], option: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    text = " ".join(_help(path, capsys).split())  # unwrapped
    if option.param_type_name != "option" or option.is_eager:
        return
    start = text.index(option.opts[-1] if len(option.opts) > 1 else option.opts[0])
    block = text[start : start + 600]
    plain_flag = option.is_flag and not option.secondary_opts  # off unless given
    if option.default is not None and option.show_default is not False and not plain_flag:
        assert "[default:" in block or "; default:" in block, block[:200]
    choices = getattr(option.type_descriptor, "choices", None) or ()
    for choice in choices:
        assert str(getattr(choice, "value", choice)) in block, (choice, block[:300])


def test_central_help_is_laid_out_like_the_others(capsys: pytest.CaptureFixture[str]) -> None:
    text = " ".join(_help(("central",), capsys).split())
    assert "--clock <arrival|synced>" in text and "[default: arrival]" in text
    assert "Largest message accepted, bytes. [default: 4194304]" in text
    assert "[default: 2000.0]" in text and "[default: mqtt://127.0.0.1:1883]" in text
    assert "(default " not in text  # no defaults left in prose


def test_an_option_from_the_environment_is_not_overridden_by_its_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The centre's defaults are shown, yet EPIC_CENTRAL_* still fills an option not given."""
    from epic.commands import central

    seen: dict[str, Any] = {}
    monkeypatch.setattr(central, "_run", lambda settings, verbose: seen.update(s=settings))
    monkeypatch.setenv("EPIC_CENTRAL_DEADLINE_MS", "750")
    monkeypatch.setenv("EPIC_CENTRAL_PORT", "9001")
    main(["central", "--bundle", "b", "--port", "9002"])
    assert seen["s"].deadline_ms == 750.0 and seen["s"].port == 9002
