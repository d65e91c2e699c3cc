"""The benchmark harness: the link emulator, the LTE energy model, and the runs built on them."""
