"""Option types shared by several sub-commands, and how a service's command hands its options
to the service's settings model (``EdgeConfig``, ``CentralSettings``)."""

from __future__ import annotations

import enum
import importlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from epic.shared.physics.families import FAMILIES

if TYPE_CHECKING:
    from pydantic import BaseModel

# Built from the registry so a new family shows up in every command's choices. Its members
# (names such as "flatfault-a") exist only at run time, so the type checker sees a str enum
# with the run-time class's bases (a StrEnum, as ruff's UP042 asks, would print differently).
if TYPE_CHECKING:

    class Family(str, enum.Enum): ...  # noqa: UP042

else:
    Family = enum.Enum("Family", {name: name for name in FAMILIES}, type=str)

Threads = Annotated[int, typer.Option(min=0, help="CPU threads for torch (0: all cores).")]
BatchSize = Annotated[int, typer.Option(min=1, help="Samples per forward pass.")]
ComputeDevice = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
JsonOut = Annotated[
    Path | None, typer.Option("--json", dir_okay=False, help="Write the figures as JSON.")
]


def write_json(path: Path, value: object) -> None:
    """Write ``value`` as indented JSON, making the folder, and say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")
    typer.echo(f"wrote {path}")


def set_threads(threads: int) -> int:
    """Pin torch's CPU threads on purpose: two CPU-heavy jobs fighting over cores run each
    10-20x slower, so a job takes what it is given, all cores by default (``0``), shared
    out among the processes torchrun started on this machine (``LOCAL_WORLD_SIZE``)."""
    import torch  # heavy: imported when a command needs it, so `epic --help` stays quick

    local = os.environ.get("LOCAL_WORLD_SIZE", "1")
    share = int(local) if local.isdigit() and int(local) > 0 else 1
    n = threads or max(1, (os.cpu_count() or 1) // share)
    torch.set_num_threads(n)
    return n


# -- a service's settings from its command line ------------------------------------------
# The settings model owns every default and every check; the command's options show the
# model's defaults in --help, and pass on only what was typed, so that the model's
# environment variables (EPIC_EDGE_*, EPIC_CENTRAL_*) fill the rest.


def settings_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """Each field's default (None for a required one): what the options show as theirs."""
    return {
        name: None if field.is_required() else field.get_default(call_default_factory=True)
        for name, field in model.model_fields.items()
    }


def default_of(settings: str, name: str) -> Any:
    """The default of setting ``name`` in a service's settings model, ``"module:Class"``, for
    a command that starts the service and shows its defaults as its own (``epic demo``,
    ``epic bench``); None where the service's packages are missing (a training box, which
    runs no service)."""
    module, _, model = settings.partition(":")
    try:
        cls = getattr(importlib.import_module(module), model)
    except ModuleNotFoundError:
        return None
    return cls.model_fields[name].get_default()


CENTRE = "epic.central.settings:CentralSettings"
EDGE = "epic.edge.config:EdgeConfig"


def given_options(ctx: typer.Context, values: Mapping[str, Any]) -> dict[str, Any]:
    """Those of ``values`` (a command's parameters by name) typed on the command line, enums
    as their values."""
    given = {}
    for name, value in values.items():
        source = ctx.get_parameter_source(name)
        if source is not None and source.name == "COMMANDLINE":
            given[name] = value.value if isinstance(value, enum.Enum) else value
    return given


def service_option(help: str, shown: str | None = None, **kw: Any) -> Any:
    """A service command's option (``epic central``, ``epic api``); ``shown`` describes a
    default that is not a plain value."""
    return typer.Option(help=help, show_default=shown if shown is not None else True, **kw)
