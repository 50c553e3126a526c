"""Tocsin: a self-hostable, real-time notification service."""

from tocsin._version import __version__

__all__ = ["__version__"]
