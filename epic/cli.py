"""The ``epic`` command line: one entry point, a sub-command per job.

Errors a user can cause (a bad value, a missing file, unusable data) end in one line on
stderr, ``epic: error: ...``, and exit code 2; tracebacks are for bugs.
"""

from __future__ import annotations

import sys

import typer

from epic import __version__
from epic.commands import bench, broker, data, demo, deploy, edge, evaluate, report, train
from epic.commands import central as central_command
from shared.data.errors import DataError

app = typer.Typer(
    name="epic",
    help="EPIC: distributed, physics-informed seismic inversion for field sensor arrays.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.command("demo")(demo.demo)
app.command("train")(train.train)
app.command("eval")(evaluate.evaluate)
app.command("report")(report.report)
app.command("deploy")(deploy.deploy)
app.command("central")(central_command.central)
app.command("edge")(edge.edge)
app.command("bench")(bench.bench)
app.add_typer(broker.app, name="broker")


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


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        code = app(args=argv, prog_name="epic", standalone_mode=False)
    except DataError as exc:
        _fail(str(exc))
    except (typer.Abort, KeyboardInterrupt):
        print("epic: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        # Usage errors of typer's (vendored, unexported) click carry exit_code 2 and a
        # format_message(): print them as one line instead of a usage banner and a box.
        if getattr(exc, "exit_code", None) == 2 and hasattr(exc, "format_message"):
            message = exc.format_message().replace("Value error, ", "")
            if not message:  # a bare group: its help is already printed
                sys.exit(2)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            _fail(message + hint)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)
