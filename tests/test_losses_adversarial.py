"""Adversarial cases of sqeval.losses (issue 25's promises), each a defect found in review:
what a user training a model would pass, and what the losses must do with it."""

from __future__ import annotations

import io
import pickle
import warnings

import numpy as np
import pytest
import torch

from sqeval import losses

pytestmark = pytest.mark.numeric


# --- UncertaintyWeighting --------------------------------------------------------------------

def test_uncertainty_weighting_pickles_and_saves_whole():
    """A module defined inside a function could not be pickled: torch.save(model) of a model
    holding one, multiprocessing and deepcopy-by-pickle failed with AttributeError."""
    weighting = losses.UncertaintyWeighting(3)
    with torch.no_grad():
        weighting.log_variances.add_(torch.tensor([0.5, -1.0, 2.0]))
    copy = pickle.loads(pickle.dumps(weighting))
    assert isinstance(copy, losses.UncertaintyWeighting)
    torch.testing.assert_close(copy.log_variances, weighting.log_variances)
    buffer = io.BytesIO()
    torch.save(weighting, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    torch.testing.assert_close(loaded.log_variances, weighting.log_variances)


def test_uncertainty_weighting_refuses_bad_losses_with_a_value_error():
    weighting = losses.UncertaintyWeighting(2)
    with pytest.raises(ValueError, match="one value per task"):  # was a RuntimeError (reshape)
        weighting(torch.ones(3), torch.ones(3))
    with pytest.raises(ValueError, match="device"):  # was a RuntimeError from torch.stack
        weighting(torch.ones((), device="meta"), torch.ones(()))


def test_uncertainty_weighting_computes_half_precision_in_float32():
    weighting = losses.UncertaintyWeighting(2)
    for dtype in (torch.float16, torch.bfloat16):
        value = weighting(torch.tensor(2.0, dtype=dtype), torch.tensor(4.0, dtype=dtype))
        assert value.dtype == torch.float32
    assert weighting(torch.tensor(2.0, dtype=torch.float64), torch.tensor(4.0)).dtype == \
        torch.float64
    assert losses.UncertaintyWeighting(np.int64(2)).log_variances.numel() == 2
