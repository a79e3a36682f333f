"""``sqeval metrics``: the registry as a table."""

from __future__ import annotations

from ..metrics import REGISTRY
from ..report.table import registry_table
from .common import stdout_console


def metrics_command() -> None:
    """List every metric: name, unit, range, direction, rates, definition, reference."""
    stdout_console().print(registry_table(list(REGISTRY.values())))
