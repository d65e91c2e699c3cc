"""Make an interpreter look like the GPU machine's: the packages it lacks cannot be imported.

pydantic and the typer that needs it travel there as wheels (``scripts/gpu-train.sh``
installs them from ``.whl/``); pydantic-settings and the centre's web stack do not.

Put this folder first on ``PYTHONPATH`` (``scripts/gpu-train.sh``'s dry run in the test suite
does) and ``import deepwave`` fails as it fails there, so a module that needs one of these
at import time is found here, not after a GPU machine has started.
"""

import sys

ABSENT = {
    "aiomqtt",
    "amqtt",
    "deepwave",
    "fastapi",
    "fastapi_offline",
    "pydantic_settings",
    "starlette",
    "uvicorn",
}


class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ABSENT:
            name = name.partition(".")[0]
            message = f"No module named {name!r} (not on the GPU machine)"
            raise ModuleNotFoundError(message, name=name)
        return None


sys.meta_path.insert(0, _Absent())
