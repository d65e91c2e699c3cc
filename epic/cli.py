"""The ``epic`` command line: one entry point, a sub-command per job.

Errors a user can cause (a bad value, a missing file, unusable data:
``epic.shared.errors.UserError`` and its kinds) end in one line on stderr, ``epic: error: ...``, and
exit code 2, caught here in ``main`` and nowhere else; tracebacks are for bugs.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from typing import Any

import typer
import typer.main

from epic import __version__
from epic.commands import (
    bench,
    broker,
    compress,
    data,
    demo,
    deploy,
    evaluate,
    report,
    train,
)
from epic.helptext import tidy
from epic.shared.errors import ConfigError, UserError
from epic.shared.parentwatch import watch_supervisor
from epic.shared.torchfile import reworded

app = typer.Typer(
    name="epic",
    help="EPIC: distributed, physics-informed seismic inversion for field sensor arrays.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help: it rewraps docstrings to the terminal and keeps defaults whole at
    # 80 columns, where rich's boxes cut them off (epic.helptext tidies the value labels).
    rich_markup_mode=None,
)
# The command list shows these; one line each at 80 columns (click would cut a long first
# sentence with "...").
app.add_typer(data.app, name="data", short_help="Make, inspect and picture OpenFWI datasets.")
app.command("demo", short_help="Run broker, centre and edges here; open the live monitor.")(
    demo.demo
)
app.command("train", short_help="Train a model on OpenFWI-layout folders.")(train.train)
app.command("eval", short_help="Score a checkpoint, optionally with devices gone.")(
    evaluate.evaluate
)
app.command("report", short_help="Score checkpoints per family; write Markdown tables.")(
    report.report
)
app.command("compress", short_help="Fit the wire code that shrinks EPIC-Net's latents.")(
    compress.compress
)
app.command("deploy", short_help="Split a checkpoint into a bundle for edges and centre.")(
    deploy.deploy
)


def _service_command(name: str) -> Callable[..., None]:
    """``epic.commands.<name>.<name>``, or where the service's packages are missing (a training
    box, the GPU machine, has no MQTT or web stack, nor the pydantic-settings that their
    settings models need) a stand-in that says so."""
    try:
        return getattr(importlib.import_module(f"epic.commands.{name}"), name)
    except ModuleNotFoundError as missing:
        absent = missing.name

    def unavailable() -> None:
        """Needs the service's packages, absent here."""
        raise UserError(f"epic {name} needs {absent}, not installed here: pip install epic-fwi")

    return unavailable


app.command("central", short_help="Run the centre: assemble, decode, store, serve maps.")(
    _service_command("central")
)
app.command("api", short_help="Serve every deployment of a database: REST, live monitor.")(
    _service_command("api")
)
app.command("edge", short_help="Run one field device: encode and publish its latents.")(
    _service_command("edge")
)
app.command("bench", short_help="Compare EPIC with the centralized baseline, end to end.")(
    bench.bench
)
app.add_typer(
    broker.app, name="broker", short_help="Run the embedded MQTT broker; make credentials."
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"epic {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Run `epic COMMAND --help` for each command's options."""


def _fail(message: str) -> None:
    message = " ".join(str(message).split())  # always one line
    print(f"epic: error: {message}", file=sys.stderr)
    sys.exit(2)


def _blame_options(command: Any) -> Any:
    """Make every command of the tree report a ``ConfigError`` as click reports a bad option
    value: "Invalid value for --OPTION: ..." and a pointer to the command's ``--help`` (the
    option is the one the error names; ``main`` prints it as one line)."""
    for sub in getattr(command, "commands", {}).values():
        _blame_options(sub)
    callback = command.callback
    if callback is None:
        return command

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except ConfigError as exc:
            # Raised inside click's invocation, so click adds the command's context.
            raise typer.BadParameter(str(exc), param_hint=exc.option) from exc

    command.callback = checked
    return command


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    watch_supervisor()  # a part of `epic demo` ends with it, however it ends
    try:
        command = _blame_options(tidy(typer.main.get_command(app)))
        code = command.main(args=argv, prog_name="epic", standalone_mode=False)
    except UserError as exc:  # the one place a user's error becomes one line and exit 2
        _fail(reworded(exc))
    except (typer.Abort, KeyboardInterrupt):
        print("epic: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        # Usage errors of typer's (vendored, unexported) click carry exit_code 2 and a
        # format_message(): print them as one line instead of a usage banner and a box.
        if getattr(exc, "exit_code", None) == 2 and hasattr(exc, "format_message"):
            # click's "Invalid value: " (a check with no one option to name) and pydantic's
            # "Value error, " say nothing the message does not.
            message = exc.format_message().replace("Value error, ", "")
            message = message.removeprefix("Invalid value: ")
            if not message:  # a bare group: its help is already printed
                sys.exit(2)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            _fail(message + hint)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)
