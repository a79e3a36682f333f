"""sqeval: evaluate speech enhancement with metrics exact to their reference implementations.

The public API: :func:`sqeval.score` (the whole pipeline, returning
:class:`~sqeval.api.Results`), :func:`sqeval.evaluate` (the same rows from arrays or
tensors in memory) and :func:`sqeval.read_results` (the same interface from a saved
CSV); the metric functions in :mod:`sqeval.metrics` (keyword-only ``reference=`` /
``estimate=``) and their registry :data:`sqeval.metrics.REGISTRY`; the loss forms in
:mod:`sqeval.losses`.
"""

__version__ = "0.7.0"
__all__ = ["Results", "evaluate", "read_results", "score"]
# where each public name lives (imported on first use)
HOMES = {"Results": ".api", "evaluate": ".arrays", "read_results": ".api", "score": ".api"}

# public submodules, reachable as attributes after a plain ``import sqeval``
SUBMODULES = ("api", "losses", "metrics", "stats")


def __getattr__(name: str):
    """``score``, ``read_results`` and ``Results`` from :mod:`sqeval.api`, ``evaluate``
    from :mod:`sqeval.arrays`, and the public
    submodules (``sqeval.losses``, ``sqeval.metrics``, ...), imported on first use so that
    ``import sqeval`` stays light."""
    import importlib

    if name in __all__:
        return getattr(importlib.import_module(HOMES[name], __name__), name)
    if name in SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'sqeval' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__, *SUBMODULES])
