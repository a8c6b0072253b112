"""Packaged data: default policy, translations, icons, card BIN table."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def path(*parts: str) -> Path:
    """Absolute path of a packaged resource file."""
    return ROOT.joinpath(*parts)
