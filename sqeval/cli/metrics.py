"""``sqeval metrics``: the registry as tables, one per group."""

from __future__ import annotations

from ..metrics import REGISTRY
from ..metrics.registry import GROUPS, PRESETS
from ..report.table import preset_table, registry_tables
from .common import stdout_console


def metrics_command() -> None:
    """List every metric by group: name, whether it needs the clean reference, unit,
    range, direction, rates, definition, reference, and the source with its version; then
    the presets (-m voicebank, -m dns: the columns papers print, in their order)."""
    console = stdout_console()
    for table in registry_tables(list(REGISTRY.values()), GROUPS):
        console.print(table)
    console.print(preset_table(PRESETS))
