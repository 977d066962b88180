"""A problem that lasts across reconciles, logged once (again only when it changes) rather than every poll."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    import structlog


@final
class LastingProblem:
    """Remembers the last problem logged, so a controller polling a broken file or device warns once."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple[str, str] | None = None

    def report(self, logger: structlog.typing.FilteringBoundLogger, event: str, error: str) -> None:
        """Warn with ``event`` and ``error``, unless that same problem was the last one warned about."""
        if self._last != (event, error):
            self._last = (event, error)
            logger.warning(event, error=error)

    def clear(self) -> bool:
        """Forget the problem (it is gone); returns whether there was one."""
        had = self._last is not None
        self._last = None
        return had
