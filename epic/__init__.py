"""EPIC: distributed, physics-informed seismic inversion for field sensor arrays."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("epic-fwi")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
