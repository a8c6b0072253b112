"""Packaged data (installed as `teller_guard_resources`): default policy, translations, icons,
the card BIN table and the samples.

Read it only through importlib.resources, with `resource()`. In an ordinary, editable or frozen
(one-folder) install every resource is a real file, so Qt may load it by its path.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable


def resource(*parts: str) -> Traversable:
    """The packaged file at `parts` (e.g. ``resource("data", "cn-card-bins.csv")``)."""
    return files(__name__).joinpath(*parts)
