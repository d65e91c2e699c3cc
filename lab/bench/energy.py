"""Communication energy of an edge's LTE uplink: the power model of Huang et al., MobiSys 2012.

Source: J. Huang, F. Qian, A. Gerber, Z. M. Mao, S. Sen, O. Spatscheck, "A close examination
of performance and power characteristics of 4G LTE networks", MobiSys 2012, pp. 225-238
(the EPIC paper's reference [4]). Their LTE power model, fitted on a commercial LTE phone:

* While transmitting at uplink throughput ``t_u`` (Mbit/s):
  ``P_up = alpha_u * t_u + beta``, ``alpha_u = 438.39 mW per Mbit/s``, ``beta = 1288.04 mW``.
  Sending ``B`` bytes in ``T`` seconds (``t_u = 8 B / T / 1e6``) therefore costs
  ``E = alpha_u * (8 B / 1e6) + beta * T`` mJ: 438.39 mJ per Mbit sent, plus 1288.04 mJ per
  second the radio spends sending. ``T`` is the radio's sending time (the bytes on the wire
  over the uplink's effective rate), not the one-way network delay after it.
* The RRC tail: after the last transmission the radio stays in RRC_CONNECTED until the
  inactivity timer expires, ``T_tail = 11.576 s`` at ``P_tail = 1060.0 mW`` (the "LTE tail
  base" row of the paper's power-model table). Leaving RRC_IDLE again costs a promotion,
  ``T_pro = 260.1 ms`` at ``P_pro = 1210.7 mW``. These are the values as we read the paper
  (its Table 3, with the data-power fit in Table 4); the stored copies we could search held
  only its abstract, so they are quoted, not re-derived. The DRX on-periods inside the tail
  (1 ms at 1680 mW every 40-100 ms) are not added: they raise the tail by under 2 %.

How the tail is shared between samples. An edge sends one sample every ``interval_s``
seconds. After a sample's transmission ends the radio idles for
``gap = interval_s - transmit_s``. If the gap is shorter than the tail the radio never
returns to RRC_IDLE: the tail is then a continuous cost per unit of time, and each sample is
charged the part it caused, ``P_tail * min(T_tail, gap)`` (with back-to-back samples, the
gap). If the gap is longer, the full tail is paid and the next sample also pays a promotion.
A single sample with nothing after it is ``interval_s = inf``: the full tail plus a promotion.

``per_sample_energy`` reports both: ``transmit_mj`` (the radio's active sending only) and
``total_mj`` (with the tail and any promotion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "ALPHA_UP_MW_PER_MBPS",
    "BETA_MW",
    "PROMOTION_POWER_MW",
    "PROMOTION_TIME_S",
    "TAIL_POWER_MW",
    "TAIL_TIME_S",
    "EnergyFigures",
    "per_sample_energy",
    "promotion_energy_mj",
    "tail_energy_mj",
    "transmit_energy_mj",
    "uplink_power_mw",
]

ALPHA_UP_MW_PER_MBPS = 438.39
BETA_MW = 1288.04
TAIL_POWER_MW = 1060.0
TAIL_TIME_S = 11.576
PROMOTION_POWER_MW = 1210.7
PROMOTION_TIME_S = 0.2601


@dataclass(frozen=True)
class EnergyFigures:
    """One sample's uplink energy in mJ: sending, the RRC tail it causes, any promotion."""

    transmit_mj: float
    tail_mj: float
    promotion_mj: float
    total_mj: float


def uplink_power_mw(throughput_mbps: float) -> float:
    """Radio power while sending at ``throughput_mbps`` (Mbit/s)."""
    _check("throughput_mbps", throughput_mbps)
    return ALPHA_UP_MW_PER_MBPS * throughput_mbps + BETA_MW


def transmit_energy_mj(nbytes: float, seconds: float) -> float:
    """Energy of sending ``nbytes`` in ``seconds`` of radio time: ``P_up(t_u) * seconds``."""
    _check("nbytes", nbytes)
    _check("seconds", seconds)
    if math.isinf(seconds):
        raise ValueError("seconds must be finite")
    if nbytes == 0:
        return 0.0
    if seconds == 0:
        raise ValueError(f"{nbytes} bytes cannot be sent in 0 seconds")
    return uplink_power_mw(nbytes * 8 / seconds / 1e6) * seconds


def tail_energy_mj(gap_s: float = math.inf) -> float:
    """The RRC tail charged to one transmission followed by ``gap_s`` seconds of silence."""
    _check("gap_s", gap_s)
    return TAIL_POWER_MW * min(TAIL_TIME_S, gap_s)


def promotion_energy_mj(gap_s: float = math.inf) -> float:
    """The RRC_IDLE -> RRC_CONNECTED promotion, paid only when the gap outlasts the tail."""
    _check("gap_s", gap_s)
    return PROMOTION_POWER_MW * PROMOTION_TIME_S if gap_s > TAIL_TIME_S else 0.0


def per_sample_energy(
    nbytes: float, transmit_s: float, interval_s: float = math.inf
) -> EnergyFigures:
    """One sample's energy: ``nbytes`` sent in ``transmit_s`` seconds, one sample every
    ``interval_s`` seconds (``inf``: a lone sample). A backlogged edge (``transmit_s >=
    interval_s``) never stops sending: no tail, no promotion."""
    _check("interval_s", interval_s)
    transmit = transmit_energy_mj(nbytes, transmit_s)
    gap = max(0.0, interval_s - transmit_s)
    tail = tail_energy_mj(gap)
    promotion = promotion_energy_mj(gap)
    return EnergyFigures(transmit, tail, promotion, transmit + tail + promotion)


def _check(name: str, value: float) -> None:
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number: {value}")
