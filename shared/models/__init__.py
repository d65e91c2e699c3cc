"""The networks (EPIC-Net, InversionNet, FLA, SLA), their registry, checkpoints, wire code."""
