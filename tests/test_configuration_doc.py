"""docs/configuration.md lists every setting of the edge, the centre and ``epic api`` as
their settings models have it: the environment variable, the option, the default, what it
is. A field added, renamed or given another default fails here until the table says so (the
failure prints the table to paste)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main
from pydantic import AliasChoices, BaseModel

from epic.central.api_settings import ApiSettings
from epic.central.settings import CentralSettings
from epic.cli import app
from epic.edge.config import EdgeConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
MODELS = [
    (EdgeConfig, "edge", "EPIC_EDGE_"),
    (CentralSettings, "central", "EPIC_CENTRAL_"),
    (ApiSettings, "api", "EPIC_API_"),
]


def _variables(prefix: str, name: str, field: Any) -> str:
    alias = field.validation_alias
    names = alias.choices if isinstance(alias, AliasChoices) else [prefix + name.upper()]
    return ", ".join(f"`{n}`" for n in names)


def table(model: type[BaseModel], command: str, prefix: str) -> str:
    """The markdown table of ``model``'s settings, options from ``epic COMMAND``."""
    params = typer.main.get_command(app).commands[command].params  # type: ignore[attr-defined]
    options = {p.name: next(o for o in p.opts if o.startswith("--")) for p in params}
    rows = ["| variable | option | default | what |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        option = f"`{options[name]}`" if name in options else "—"
        if field.is_required():
            default = "required"
        else:
            value = field.get_default()
            default = "—" if value is None else f"`{value}`"
        what = (field.description or "").replace("<", "\\<")  # not an HTML tag to markdown
        rows.append(f"| {_variables(prefix, name, field)} | {option} | {default} | {what} |")
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize(("model", "command", "prefix"), MODELS, ids=["edge", "central", "api"])
def test_every_setting_is_in_the_table(model: type[BaseModel], command: str, prefix: str) -> None:
    expected = table(model, command, prefix)
    assert expected in DOC.read_text(), f"docs/configuration.md should have:\n\n{expected}"


def test_every_setting_has_a_description() -> None:
    for model, _, _ in MODELS:
        missing = [n for n, f in model.model_fields.items() if not f.description]
        assert not missing, f"{model.__name__}: {missing}"
