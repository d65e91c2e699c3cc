"""How every ``epic`` command's ``--help`` reads: plain text that click wraps to the terminal,
each option with a short value label, its default and, for a choice, every choice.

The CLI uses click's plain formatter (``rich_markup_mode=None``), which rewraps the
docstrings' paragraphs and keeps defaults whole at 80 columns. What typer then still prints
is its type label, a Python type name (``<list[Path]>``, ``<int range>``); ``tidy`` replaces
those, once, on the built command tree, so that no command module has to spell them out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

__all__ = ["tidy"]

# A choice label longer than this would push the help column off an 80-column terminal:
# such an option shows <name> instead, and its help lists the choices.
MAX_CHOICE_LABEL = 26
_NAMES = {int: "int", float: "float", str: "str", bool: "bool"}
# Stands in for "-" while click wraps the option list, so that a default such as
# "demo-run" or "epic-central-<deployment>.sqlite" is never split at its hyphen.
_NO_BREAK_HYPHEN = "\u2011"


def tidy(command: Any) -> Any:
    """Give every option and argument of ``command`` and its sub-commands a clean label, a
    formatter that keeps hyphenated words whole, and a short help that is never cut."""
    command.context_class = _context_class(command.context_class)
    if command.short_help is None and command.help:
        command.short_help = _first_sentence(command.help)
    for param in getattr(command, "params", []):
        if getattr(param, "type_descriptor", None) is None or getattr(param, "is_flag", False):
            continue
        label = _label(param)
        if label is None:
            continue
        if param.param_type_name == "option":
            if param.metavar is None:
                param.metavar = label
        else:
            # Typer shows an argument's type beside its name, and has no setting for it.
            param.display_type_rich = lambda ctx, label=label: label
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)
    return command


def _label(param: Any) -> str | None:
    desc = param.type_descriptor
    if desc.is_choice:
        choices = [str(getattr(c, "value", c)) for c in desc.choices or ()]
        label = f"<{'|'.join(choices)}>"
        if len(label) <= MAX_CHOICE_LABEL:
            return label
        listed = f"One of: {', '.join(choices)}."
        param.help = f"{param.help.rstrip()} {listed}" if param.help else listed
        return f"<{param.name}>"
    kind = get_args(desc.annotation)[0] if desc.is_list else desc.annotation
    if kind is Path or desc.is_path:
        return f"<{desc.path_type}>"
    if kind in _NAMES:
        return f"<{_NAMES[kind]}>"
    return None  # typer's own label


def _first_sentence(text: str) -> str:
    """The first sentence of the first paragraph, on one line, whole (click would cut it at
    the command list's width with "...")."""
    paragraph = " ".join(text.strip().split("\n\n")[0].split())
    head, dot, _ = paragraph.partition(". ")
    return head + dot.strip() if dot else paragraph


def _context_class(base: type) -> type:
    if getattr(base, "_epic_tidy", False):
        return base

    class Formatter(base.formatter_class):  # type: ignore[name-defined]
        def write_dl(self, rows: Any, *args: Any, **kwargs: Any) -> None:
            start = len(self.buffer)
            rows = [(term, text.replace("-", _NO_BREAK_HYPHEN)) for term, text in rows]
            super().write_dl(rows, *args, **kwargs)
            self.buffer[start:] = [s.replace(_NO_BREAK_HYPHEN, "-") for s in self.buffer[start:]]

    return type("EpicContext", (base,), {"formatter_class": Formatter, "_epic_tidy": True})
