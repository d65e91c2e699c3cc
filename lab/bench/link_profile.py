"""A link's profile: uplink rate, one-way delay and segment loss, and what TCP makes of them.

The numbers the link emulator (``epic.lab.bench.link``) shapes a stream with. Loss lowers TCP's
steady-state throughput to the Mathis et al. (1997) bound, ``MSS / RTT * C / sqrt(p)``,
``C = sqrt(3/2)``, and costs a segment one retransmission timeout, which Linux sets for a
steady RTT to ``srtt + max(4 * rttvar, TCP_RTO_MIN)`` = RTT + 200 ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["MSS_BYTES", "PROFILES", "TCP_RTO_MIN_S", "LinkProfile", "mathis_rate_bps"]

MSS_BYTES = 1460
TCP_RTO_MIN_S = 0.2  # Linux's TCP_RTO_MIN (include/net/tcp.h: HZ / 5)
MATHIS_C = math.sqrt(3 / 2)


def mathis_rate_bps(loss: float, rtt_s: float, mss_bytes: int = MSS_BYTES) -> float:
    """Mathis et al. (1997) TCP throughput bound in bit/s; ``inf`` without loss or delay."""
    if loss <= 0 or rtt_s <= 0:
        return math.inf
    return mss_bytes * 8 / rtt_s * MATHIS_C / math.sqrt(loss)


@dataclass(frozen=True)
class LinkProfile:
    """One link: uplink rate (None: uncapped), one-way delay, uplink segment loss."""

    name: str
    rate_bps: float | None
    delay_s: float
    loss: float
    downlink_rate_bps: float | None = None

    def __post_init__(self) -> None:
        for field in ("rate_bps", "downlink_rate_bps"):
            value = getattr(self, field)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{field} must be a positive number of bit/s or None: {value}")
        if not (math.isfinite(self.delay_s) and self.delay_s >= 0):
            raise ValueError(f"delay_s must be >= 0 seconds: {self.delay_s}")
        if not (0 <= self.loss < 1):
            raise ValueError(f"loss must be a probability in [0, 1): {self.loss}")

    @classmethod
    def named(cls, name: str) -> LinkProfile:
        """``"4g"``, ``"wifi"`` or ``"none"``."""
        try:
            return PROFILES[name]
        except KeyError:
            known = ", ".join(PROFILES)
            raise ValueError(f"unknown link profile {name!r}; known: {known}") from None

    @property
    def rtt_s(self) -> float:
        return 2 * self.delay_s

    @property
    def rto_s(self) -> float:
        """Retransmission timeout for a steady RTT, as Linux computes it."""
        return self.rtt_s + TCP_RTO_MIN_S

    @property
    def effective_rate_bps(self) -> float | None:
        """The uplink's rate after loss: ``min(rate_bps, Mathis rate)``; None if uncapped."""
        rate = min(self.rate_bps or math.inf, mathis_rate_bps(self.loss, self.rtt_s))
        return None if math.isinf(rate) else rate


PROFILES: dict[str, LinkProfile] = {
    # The EPIC paper's emulated 4G (section 2): 15 Mbit/s upload, 50 ms, 0.5 % loss.
    "4g": LinkProfile("4g", rate_bps=15e6, delay_s=0.050, loss=0.005),
    # The paper's Wi-Fi: Raspberry Pi 5 edges on a gigabit router. The Pi 5's radio (CYW43455)
    # is single-stream 802.11ac, 433 Mbit/s PHY at best; ~70 % of that as TCP goodput, and a
    # LAN round trip of a few ms. An estimate, not a measurement on that hardware.
    "wifi": LinkProfile("wifi", rate_bps=300e6, delay_s=0.002, loss=0.0),
    "none": LinkProfile("none", rate_bps=None, delay_s=0.0, loss=0.0),
}
