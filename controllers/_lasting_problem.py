"""A problem that lasts across reconciles, logged once (again only when it changes) rather than every poll."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final, final

if TYPE_CHECKING:
    import structlog


# A retry may attach the same image to another free loop device: loop47, then loop48, is one problem.
_LOOP_NUMBER: Final = re.compile(r"/dev/loop\d+")


def _same_problem(error: str) -> str:
    return _LOOP_NUMBER.sub("/dev/loopN", error)


@final
class LastingProblem:
    """Remembers the last problem logged, so a controller polling a broken file or device warns once."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple[str, str] | None = None

    def report(self, logger: structlog.typing.FilteringBoundLogger, event: str, error: str) -> None:
        """Warn with ``event`` and ``error``, unless that same problem was the last one warned about."""
        key = (event, _same_problem(error))
        if self._last != key:
            self._last = key
            logger.warning(event, error=error)

    def clear(self) -> bool:
        """Forget the problem (it is gone); returns whether there was one."""
        had = self._last is not None
        self._last = None
        return had
