"""Docker's version strings, read one way everywhere."""

from __future__ import annotations


def short(version: str) -> str:
    """A release as Docker names it: '20.10.24+dfsg1' -> '20.10.24', '28.5.2-1' -> '28.5.2'."""
    return version.split("+")[0].split("-")[0]
