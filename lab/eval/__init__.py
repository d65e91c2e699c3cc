"""Evaluation: figures of a checkpoint on held-out folders, the results table, the wire's cost
in fidelity, and the pictures and spectra the docs show (``epic eval``, ``epic report``)."""
