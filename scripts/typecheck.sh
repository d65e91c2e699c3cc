#!/bin/sh
# mypy over the product code (the rooms and the CLI, not the tests).
#
# The rooms install as epic.shared, epic.edge, ... through setuptools' package-dir mapping,
# which an editable install serves with an import hook that mypy cannot follow. So mypy
# reads a farm of links laid out as the installed package: the same modules, under the
# names they are imported by.
set -eu
cd "$(dirname "$0")/.."
farm=build/typecheck
rm -rf "$farm"
mkdir -p "$farm/epic"
ln -s "$PWD"/epic/*.py "$PWD/epic/commands" "$farm/epic/"
for room in shared edge central broker lab; do ln -s "$PWD/$room" "$farm/epic/$room"; done
MYPYPATH="$PWD/$farm" exec "${PYTHON:-python}" -m mypy --cache-dir build/mypy-cache -p epic "$@"
