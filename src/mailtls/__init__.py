"""Tooling for the course's lab: its certificate authority and the wiretap between hosts.

The lab itself (hosts, backends and the ``python -m mailtls lab`` command) builds on these.
"""

__version__ = "0.1.0"
