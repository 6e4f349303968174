"""Saliency-map metrics, as the MIT Saliency Benchmark defines them
(docs/saliency.md): each takes maps [N, H, W] (or one [H, W]) and returns
the per-image values, float64 [N]. Constant maps get the documented values,
never NaN."""
from . import _gradlens
from ._convert import tensor as _maps


def cc(prediction, target):
    """Pearson's correlation of the two maps."""
    return _gradlens.saliency_cc(_maps(prediction), _maps(target))


def kld(prediction, target):
    """KL(target || prediction) of the maps normalised to sum 1."""
    return _gradlens.saliency_kld(_maps(prediction), _maps(target))


def sim(prediction, target):
    """Histogram intersection of the min-max normalised, sum-1 maps."""
    return _gradlens.saliency_sim(_maps(prediction), _maps(target))


def nss(saliency, fixations):
    """Mean standardised saliency at the fixated (non-zero) pixels."""
    return _gradlens.saliency_nss(_maps(saliency), _maps(fixations))


def auc_judd(saliency, fixations, jitter=False, seed=0):
    return _gradlens.saliency_auc_judd(_maps(saliency), _maps(fixations), jitter, seed)


def auc_borji(saliency, fixations, n_splits=100, step_size=0.1, seed=0):
    return _gradlens.saliency_auc_borji(_maps(saliency), _maps(fixations), n_splits, step_size, seed)


def auc_shuffled(saliency, fixations, other_fixations, n_splits=100, step_size=0.1, seed=0):
    return _gradlens.saliency_auc_shuffled(_maps(saliency), _maps(fixations), _maps(other_fixations), n_splits,
                                           step_size, seed)
