"""sqeval: evaluate speech enhancement with metrics exact to their reference implementations.

The public API is the metric functions in :mod:`sqeval.metrics` (keyword-only
``reference=`` / ``estimate=``), the registry :data:`sqeval.metrics.REGISTRY`, and
:func:`sqeval.scoring.score_folders` for whole folders.
"""

__version__ = "0.2.0"
