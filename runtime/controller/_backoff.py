"""Exponential backoff with jitter: how long a failed reconcile waits before it is retried."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import final


@final
@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How retry delays grow after consecutive failures.

    The defaults are COSI's: 0.5 s, then x1.5 per failure, each delay moved randomly by up to +-50 % (so
    that many controllers failing together do not retry in lock-step), never more than 60 s. The policy never
    gives up: a controller that keeps failing keeps being retried at the cap.

    Args:
        initial: delay after the first failure, in seconds.
        multiplier: growth factor per further failure (>= 1).
        jitter: fraction of the delay added or removed at random (0 <= jitter < 1); 0 makes delays exact.
        maximum: upper bound of any delay, jitter included, in seconds.
    """

    initial: float = 0.5
    multiplier: float = 1.5
    jitter: float = 0.5
    maximum: float = 60.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.initial) and self.initial > 0):
            raise ValueError(f"BackoffPolicy.initial must be positive seconds, got {self.initial!r}")
        if not (math.isfinite(self.multiplier) and self.multiplier >= 1):
            raise ValueError(f"BackoffPolicy.multiplier must be >= 1, got {self.multiplier!r}")
        if not (0 <= self.jitter < 1):
            raise ValueError(f"BackoffPolicy.jitter must be in [0, 1), got {self.jitter!r}")
        if not (math.isfinite(self.maximum) and self.maximum >= self.initial):
            raise ValueError(
                f"BackoffPolicy.maximum must be >= initial ({self.initial!r}), got {self.maximum!r}"
            )

    def base_delay(self, failures: int) -> float:
        """The un-jittered delay after ``failures`` consecutive failures (1 = the first failure)."""
        if failures < 1:
            raise ValueError(f"failures must be >= 1, got {failures!r}")
        # Compare in log space so that a long failure streak cannot overflow the float power.
        exponent = failures - 1
        ceiling = math.log(self.maximum / self.initial)
        if self.multiplier > 1 and exponent * math.log(self.multiplier) >= ceiling:
            return self.maximum
        return min(self.initial * self.multiplier**exponent, self.maximum)

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """The delay to wait after ``failures`` consecutive failures, jitter applied and capped."""
        base = self.base_delay(failures)
        if self.jitter == 0:
            return base
        spread = (rng or _RNG).uniform(-self.jitter, self.jitter)
        return min(base * (1.0 + spread), self.maximum)


_RNG = random.Random()


@final
@dataclass(slots=True)
class Backoff:
    """The failure streak of one retried thing (a controller, or one key of a queue).

    `failed` records a failure and says how long to wait; `succeeded` ends the streak, so the next failure
    starts again at the policy's initial delay. The runtime calls `succeeded` itself after every successful
    reconcile (in COSI the controller had to reset its own backoff, and usually forgot).
    """

    policy: BackoffPolicy = field(default_factory=BackoffPolicy)
    rng: random.Random | None = None
    failures: int = 0

    def failed(self) -> float:
        """Record one more failure and return the delay before the next attempt, in seconds."""
        self.failures += 1
        return self.policy.delay(self.failures, self.rng)

    def succeeded(self) -> None:
        """End the failure streak."""
        self.failures = 0
