"""One definition per loss, for numpy arrays and PyTorch tensors.

Every loss in :mod:`sqeval.losses` is written once, against the small namespace
:class:`Ops` below, whose methods are numpy's or torch's functions of the same meaning.
:func:`prepare` picks it from the inputs: numpy arrays (or lists) run in float64 on numpy
and give numpy out, as the metrics do; any ``torch.Tensor`` makes the call run in torch,
differentiable, on the tensors' device, in their dtype (float64 stays float64, float32
stays float32; float16 and bfloat16 are computed in float32 and returned in float32).

torch is imported only when a tensor arrives (it is then already imported by the caller),
so the numpy path and the CLI never load it.
"""

from __future__ import annotations

import sys

import numpy as np

REDUCTIONS = ("mean", "sum", "none")
TORCH_EXTRA = "pip install 'sqeval[torch]'"


def torch_module():
    """The torch module, or an ImportError that names the extra to install."""
    try:
        import torch
    except ImportError as error:  # only reached by names that need torch itself
        raise ImportError(f"this needs PyTorch (torch >= 2.1): {TORCH_EXTRA}") from error
    return torch


def is_tensor(x) -> bool:
    """Whether ``x`` is a torch.Tensor (without importing torch: a tensor can only exist
    when the caller has imported it)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


class Ops:
    """numpy's or torch's functions under one set of names (``axis`` everywhere)."""

    def __init__(self, torch=None, dtype=None, device=None):
        self.torch = torch
        self.dtype = dtype
        self.device = device
        self.xp = torch if torch is not None else np
        self.inputs: dict = {}  # name → tensor, checked for NaN/Inf when the value is not finite

    @property
    def is_torch(self) -> bool:
        return self.torch is not None

    # --- creation and conversion -------------------------------------------------------
    def const(self, value):
        """A constant array (no gradient) in the computation's dtype and device."""
        if self.is_torch:
            return self.torch.as_tensor(np.asarray(value), dtype=self.dtype, device=self.device)
        return np.asarray(value, dtype=np.float64)

    def index(self, value):
        """An integer index array on the computation's device."""
        if self.is_torch:
            return self.torch.as_tensor(np.asarray(value), dtype=self.torch.long,
                                        device=self.device)
        return np.asarray(value, dtype=np.intp)

    def numpy(self, x) -> np.ndarray:
        """``x`` as a float64 numpy array, detached (for choices that carry no gradient)."""
        if self.is_torch:
            return x.detach().to("cpu", self.torch.float64).numpy()
        return np.asarray(x, dtype=np.float64)

    # --- reductions over an axis ----------------------------------------------------------
    def sum(self, x, axis=-1, keepdims=False):
        if self.is_torch:
            return self.torch.sum(x, dim=axis, keepdim=keepdims)
        return np.sum(x, axis=axis, keepdims=keepdims)

    def mean(self, x, axis=-1, keepdims=False):
        if self.is_torch:
            return self.torch.mean(x, dim=axis, keepdim=keepdims)
        return np.mean(x, axis=axis, keepdims=keepdims)

    def inner(self, a, b, axis=-1):
        """``Σ a·b`` over ``axis``."""
        return self.sum(a * b, axis=axis)

    # --- elementwise ------------------------------------------------------------------------
    def where(self, condition, a, b):
        if self.is_torch:
            return self.torch.where(condition, a, b)
        return np.where(condition, a, b)

    def maximum(self, x, floor: float):
        """``max(x, floor)``; its gradient is 0 where ``x < floor``."""
        if self.is_torch:
            return self.torch.clamp(x, min=floor)
        return np.maximum(x, floor)

    def __getattr__(self, name):
        # log10, log, log1p, expm1, exp, sqrt, abs, sigmoid-free elementwise functions,
        # stack, broadcast_to, ... : the same name in numpy and torch
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.xp, name)

    def stack(self, arrays, axis=0):
        if self.is_torch:
            return self.torch.stack(arrays, dim=axis)
        return np.stack(arrays, axis=axis)

    def sigmoid(self, x):
        if self.is_torch:
            return self.torch.sigmoid(x)
        from ..metrics.entropy import expit  # the metric's σ (no overflow warning)

        return expit(x)

    def concat(self, arrays, axis):
        if self.is_torch:
            return self.torch.cat(arrays, dim=axis)
        return np.concatenate(arrays, axis=axis)

    def rfft(self, x, n):
        """The one-sided DFT of ``n`` points along the last axis."""
        if self.is_torch:
            return self.torch.fft.rfft(x, n=n, dim=-1)
        return np.fft.rfft(x, n=n, axis=-1)

    def irfft(self, x, n):
        if self.is_torch:
            return self.torch.fft.irfft(x, n=n, dim=-1)
        return np.fft.irfft(x, n=n, axis=-1)

    def sqrt0(self, x):
        """``sqrt(x)`` for ``x ≥ 0``, exact, with a zero gradient where ``x = 0`` (torch's
        would be inf·0 = NaN): the square root of 1 is taken in the branch not used."""
        positive = x > 0
        return self.where(positive, self.sqrt(self.where(positive, x, self.const(1.0))),
                          self.const(0.0))

    # --- output -------------------------------------------------------------------------------
    def reduce(self, value, reduction: str):
        """Reduce the per-item values (shape ``(...)``) as ``reduction`` says."""
        if reduction == "mean":
            value = self.mean(value, axis=tuple(range(value.ndim))) if value.ndim else value
        elif reduction == "sum":
            value = self.sum(value, axis=tuple(range(value.ndim))) if value.ndim else value
        return self.output(value)

    def require_finite(self) -> None:
        """Check the inputs for NaN/Inf now (for a loss whose steps would fail on them
        before :meth:`output` could say why: a linear solve, a choice made in numpy)."""
        for name, array in self.inputs.items():
            if not bool(self.torch.isfinite(array).all()):
                raise ValueError(f"{name} contains NaN or Inf values; expected finite values")

    def output(self, value):
        """numpy: a 0-d result as a Python float, else a float64 array; torch: the tensor.

        Tensors are checked for non-finite values here, after the computation, not before
        it: a NaN or Inf input makes the value non-finite, and then (only then) the inputs
        are searched for it, so a finite result costs one look at the (small) value
        instead of a pass over every input."""
        if self.is_torch:
            if self.inputs and not bool(self.torch.isfinite(value).all()):
                self.require_finite()
            return value
        value = np.asarray(value, dtype=np.float64)
        return float(value) if value.ndim == 0 else value


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}; "
                         f"got {reduction!r}")


def prepare(named: dict, *, reduction: str | None = "mean", min_ndim: int = 1,
            layout: str = "(..., time)", same_shape: bool = True):
    """Check the inputs of a loss and return ``(ops, arrays)`` in the order given.

    ``named`` maps each argument's name to its value. Any tensor among them makes the
    call a torch call: every argument must then be a tensor on one device (numpy arrays
    and lists are refused rather than copied silently to the device). ``same_shape``:
    the arrays must have one shape (else they need only broadcast against each other
    over the leading axes, with the last ``min_ndim`` axes equal).

    Raises:
        ValueError: an unknown ``reduction``; a tensor beside a non-tensor; tensors on
            different devices; a non-floating tensor; a complex, ragged or non-numeric
            array; fewer than ``min_ndim`` axes;
            shapes that differ; non-finite values.
    """
    if reduction is not None:
        check_reduction(reduction)
    tensors = {name: value for name, value in named.items() if is_tensor(value)}
    if tensors:
        ops, arrays = _torch_arrays(named, tensors)
    else:
        ops = Ops()
        arrays = [_float64(name, value, layout) for name, value in named.items()]
    names = list(named)
    for name, array in zip(names, arrays):
        if array.ndim < min_ndim or any(size == 0 for size in array.shape[-min_ndim:]):
            raise ValueError(f"{name} must have shape {layout}, non-empty; got shape "
                             f"{tuple(array.shape)}")
    shapes = [tuple(array.shape) for array in arrays]
    if len(set(shapes)) > 1:
        tails = {shape[-min_ndim:] for shape in shapes}
        if same_shape or len(tails) > 1 or not _broadcast(shapes):
            raise ValueError(
                f"{' and '.join(names)} must have one shape {layout}; got "
                f"{' and '.join(map(str, shapes))}")
    if ops.is_torch:  # checked by ops.output, once the value shows a problem
        ops.inputs = dict(zip(names, arrays))
    else:
        for name, array in zip(names, arrays):
            if not np.isfinite(array).all():
                raise ValueError(f"{name} contains NaN or Inf values; expected finite values")
    return ops, arrays


def _float64(name: str, value, layout: str) -> np.ndarray:
    """``value`` as a float64 array; a complex one is refused (numpy would drop its imaginary
    part, where a complex tensor is refused), a ragged or non-numeric one named."""
    try:
        array = np.asarray(value)
        complex_ = np.iscomplexobj(array)
        if not complex_:
            return array.astype(np.float64, copy=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be an array of real numbers of shape {layout}; "
                         f"got a {type(value).__name__} that numpy cannot convert ({error})"
                         ) from None
    raise ValueError(f"{name} must be real; got a complex array (take np.abs(...) or its "
                     "power first)")


def _broadcast(shapes) -> bool:
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        return False
    return True


def _torch_arrays(named: dict, tensors: dict):
    torch = sys.modules["torch"]
    others = [name for name in named if name not in tensors]
    if others:
        raise ValueError(f"{', '.join(tensors)} {'is a tensor' if len(tensors) == 1 else 'are tensors'}"
                         f" but {', '.join(others)} {'is' if len(others) == 1 else 'are'} not; "
                         "pass every argument as a torch.Tensor on one device")
    devices = {str(value.device) for value in tensors.values()}
    if len(devices) > 1:
        raise ValueError(f"the tensors are on different devices ({', '.join(sorted(devices))}); "
                         "move them to one device first")
    for name, value in tensors.items():
        if not value.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor; got {value.dtype}")
    dtypes = {value.dtype for value in tensors.values()}
    dtype = torch.float64 if torch.float64 in dtypes else torch.float32
    device = next(iter(tensors.values())).device
    return Ops(torch, dtype, device), [value.to(dtype) for value in tensors.values()]
