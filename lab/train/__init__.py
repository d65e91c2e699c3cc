"""Training: the loop, its configuration, data splits, augmentation, resume state and the wire
code fitted after it (``epic train``, ``epic compress``)."""
