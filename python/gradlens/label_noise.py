"""Scores of how likely a training label is wrong, from training dynamics
(docs/label-noise.md), larger = more suspicious, float64 [N]; and the
measures of how many flipped labels a ranking finds. The dynamics are
[epochs, N] arrays as `gradlens train --record-dynamics` writes them."""
import torch as _torch

from . import _gradlens
from ._convert import tensor as _tensor


def aum(margin):
    """Negated area under the margin (Pleiss et al. 2020) of margin [E, N]."""
    return _gradlens.aum_score(_tensor(margin, _torch.float32))


def forgetting(correct):
    """Forgetting events (Toneva et al. 2019); never learned = E."""
    return _gradlens.forgetting_score(_tensor(correct, _torch.uint8))


def low_confidence(p_label):
    """1 - mean over epochs of p(given label) (data maps)."""
    return _gradlens.low_confidence_score(_tensor(p_label, _torch.float32))


def variability(p_label):
    """Population standard deviation over epochs of p(given label) (data maps)."""
    return _gradlens.variability_score(_tensor(p_label, _torch.float32))


def el2n(error_norm, epoch):
    """EL2N (Paul et al. 2021): row `epoch` (1-based) of ||softmax - onehot|| [E, N]."""
    return _gradlens.el2n_score(_tensor(error_norm, _torch.float32), int(epoch))


def found_at_fraction(scores, is_error, fraction):
    """Share of the flagged images (is_error) among the first ceil(fraction * N)
    of the ranking by scores (largest first, ties to the lower index)."""
    return _gradlens.found_at_fraction(_tensor(scores, _torch.float64), _tensor(is_error, _torch.bool),
                                       float(fraction))


def found_curve(scores, is_error, points=100):
    return _gradlens.found_curve(_tensor(scores, _torch.float64), _tensor(is_error, _torch.bool), int(points))


def ranking_order(scores):
    return _gradlens.ranking_order(_tensor(scores, _torch.float64))
