"""Ways to run the lab: each backend brings the same hosts up from the same files in labs/."""

from __future__ import annotations


class LabError(RuntimeError):
    """Something the person running the lab must fix; the message says what and how."""
