"""One module per ``epic`` sub-command (group)."""
