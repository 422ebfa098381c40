"""Waiting for something that happens in its own time: a delivery, a log line, a port.

One loop for every wait: ``wait_until`` asks a question again and again until the answer is
true or the time is up, and then says what it was waiting for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mailtls import polling

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """Raised by ``wait_until`` when the time is up; an ``AssertionError``, so a test fails, not errors."""


def wait_until(predicate: Callable[[], T], timeout: float, interval: float = 0.5,
               what: str = "a condition") -> T:
    """The package's polling primitive (``mailtls.polling.wait_until``), failing a test when time is up.

    ``timeout`` and ``interval`` are in seconds. ``predicate`` is always asked at least once, and
    once more at the deadline. Raises ``WaitTimeout`` naming ``what`` when the time is up;
    exceptions from ``predicate`` pass through.
    """
    try:
        return polling.wait_until(predicate, timeout, what, interval)
    except polling.WaitTimeout as error:
        raise WaitTimeout(f"timed out waiting for {error}") from None


def within(predicate: Callable[[], T], timeout: float, interval: float = 0.5) -> T | None:
    """``predicate``'s first true answer within ``timeout`` seconds, or None (``wait_until``, no error)."""
    try:
        return wait_until(predicate, timeout, interval)
    except WaitTimeout:
        return None
