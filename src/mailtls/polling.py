"""One way to wait: ask again until the answer comes or the time is up.

Every wait for something outside this process (a port that opens, a line in a log, a process
that exits) goes through ``wait_until``, so that each has a deadline and each says, when it
gives up, what it waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """``wait_until`` gave up; the message says what it waited for, and for how long."""


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something true; return that.

    ``timeout`` is in seconds. The predicate is always called at least once, and once more at the
    deadline. Raises WaitTimeout ("``what`` did not happen in ``timeout`` s") after that.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"{what}: not after {timeout:g} s")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
