"""Multi-task loss weighting by homoscedastic uncertainty (Kendall, Gal, Cipolla, "Multi-task
learning using uncertainty to weigh losses for scene geometry and semantics", CVPR 2018)."""

from __future__ import annotations

from functools import lru_cache
from numbers import Integral

from ._backend import torch_module


@lru_cache(maxsize=1)
def uncertainty_weighting_class():
    """Define :class:`UncertaintyWeighting` (a ``torch.nn.Module``) once torch is needed."""
    torch = torch_module()

    class UncertaintyWeighting(torch.nn.Module):
        """Weigh ``n`` task losses by learned uncertainties (Kendall et al. 2018, Eq. 7).

        With one learnable log-variance ``s_i = log σ_i²`` per task (initialised to 0):
        ``total = Σ_i ½·exp(−s_i)·L_i + ½·s_i``. Optimise its parameters together with the
        model's; ``weights`` gives the current ``½·exp(−s_i)``. Each task loss is one value
        (a 0-d tensor or a number) on the module's device; the total is float64 if any loss
        is, else float32 (float16 and bfloat16 losses are computed in float32).

        Example:
            >>> import torch
            >>> from sqeval.losses import UncertaintyWeighting
            >>> weighting = UncertaintyWeighting(2)
            >>> float(weighting(torch.tensor(2.0), torch.tensor(4.0)).detach())
            3.0
        """

        def __init__(self, tasks: int):
            super().__init__()
            if isinstance(tasks, bool) or not isinstance(tasks, Integral) or tasks < 1:
                raise ValueError(f"tasks must be a positive number of task losses; got {tasks!r}")
            self.log_variances = torch.nn.Parameter(torch.zeros(int(tasks)))

        @property
        def weights(self):
            return 0.5 * torch.exp(-self.log_variances.detach())

        def forward(self, *losses):
            if len(losses) != self.log_variances.numel():
                raise ValueError(f"expected {self.log_variances.numel()} task losses; got "
                                 f"{len(losses)}")
            device = self.log_variances.device
            values = [torch.as_tensor(value, device=device if not torch.is_tensor(value)
                                      else None) for value in losses]
            for index, value in enumerate(values):
                if value.numel() != 1:
                    raise ValueError(f"expected one value per task loss; got shape "
                                     f"{tuple(value.shape)} for loss {index} (reduce it "
                                     "first, e.g. reduction='mean')")
                if value.device != device:
                    raise ValueError(f"task loss {index} is on device {value.device} but the "
                                     f"weighting is on {device}; move one of them (.to())")
            stacked = torch.stack([value.reshape(()) for value in values])
            if stacked.dtype != torch.float64:  # half precision computed in float32
                stacked = stacked.to(torch.float32)
            s = self.log_variances.to(stacked.dtype)
            return torch.sum(0.5 * torch.exp(-s) * stacked + 0.5 * s)

    # pickle (torch.save of a whole model, multiprocessing) finds a class by module and
    # qualified name: sqeval.losses.UncertaintyWeighting, this very class (lru_cache)
    UncertaintyWeighting.__module__ = "sqeval.losses"
    UncertaintyWeighting.__qualname__ = "UncertaintyWeighting"
    return UncertaintyWeighting
