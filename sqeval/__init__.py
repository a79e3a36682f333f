"""sqeval: evaluate speech enhancement with metrics exact to their reference implementations.

The public API: :func:`sqeval.score` (the whole pipeline, returning
:class:`~sqeval.api.Results`) and :func:`sqeval.read_results` (the same interface from a
saved CSV); the metric functions in :mod:`sqeval.metrics` (keyword-only ``reference=`` /
``estimate=``) and their registry :data:`sqeval.metrics.REGISTRY`; the loss forms in
:mod:`sqeval.losses`.
"""

__version__ = "0.5.0"
__all__ = ["Results", "read_results", "score"]


def __getattr__(name: str):
    """``score``, ``read_results`` and ``Results`` from :mod:`sqeval.api`, imported on first
    use so that ``import sqeval`` stays light."""
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'sqeval' has no attribute {name!r}")
