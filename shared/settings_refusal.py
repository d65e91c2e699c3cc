"""A settings model's refusal (pydantic's ``ValidationError``) as the one line a user reads.

Shared by the ``epic`` commands and the lab's own launchers, so an edge started either way
words a bad value the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer
    from pydantic import ValidationError

__all__ = ["settings_refusal"]


def settings_refusal(exc: ValidationError, env_prefix: str, ctx: typer.Context | None) -> str:
    """A settings model's refusal as one line: ``--option: why`` for each value refused, and
    ``--option is required (or ENV_VAR)`` for one given nowhere. A setting with no option of
    its command is named by its environment variable."""
    options = {}
    for param in ctx.command.params if ctx is not None else ():
        long = [o for o in param.opts if o.startswith("--")]
        if long:
            options[param.name] = long[0]
    parts = []
    for error in exc.errors():
        field = "_".join(str(x) for x in error["loc"])
        env = env_prefix + field.upper()
        name = options.get(field) or (env if ctx is not None else "--" + field.replace("_", "-"))
        if error["type"] == "missing":
            parts.append(f"{name} is required (or {env})")
        else:
            parts.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)
