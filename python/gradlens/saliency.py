"""Attribution-map metrics (docs/saliency.md).

Map comparison, as the MIT Saliency Benchmark defines it: cc, kld, sim, nss,
auc_judd, auc_borji, auc_shuffled take maps [N, H, W] (or one [H, W]) and
return the per-image values, float64 [N]; constant maps get the documented
values, never NaN.

Faithfulness, localisation and sanity, batched over the images: deletion,
insertion, confidence_change, road take a model (a gradlens.Model, or any
callable mapping images [N, C, H, W] to logits [N, K], e.g. a torch module in
eval mode), images (model inputs), maps [N, H, W] (higher = more relevant)
and targets [N] (the class whose softmax probability is watched);
pointing_game, energy_pointing_game, relevance_rank_accuracy take maps and
object masks; random_logit and model_randomisation take a gradlens.Model;
spearman and ssim compare two sets of maps (the data-randomisation test
compares a model's maps with those of a model trained on permuted labels)."""
import torch as _torch

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


def _inputs(images, maps, targets):
    return _maps(images, _torch.float32), _maps(maps, _torch.float32), _maps(targets, _torch.int64)


def deletion(model, images, maps, targets, steps=20, baseline="zero", blur_sigma=5.0, batch_size=256,
             patch_size=1):
    """Deletion curve (RISE): pixels replaced by the baseline (zero | mean |
    blur) in decreasing order of the map, ties in row-major order; a dict of
    "fractions" [steps + 1], "probs" [N, steps + 1] and "auc" [N] (lower is
    better). patch_size > 1 perturbs squares of that side, ordered by the
    map's sum over each (region perturbation)."""
    return _gradlens.saliency_deletion(model, *_inputs(images, maps, targets), steps, baseline, blur_sigma,
                                       batch_size, patch_size)


def insertion(model, images, maps, targets, steps=20, baseline="zero", blur_sigma=5.0, batch_size=256,
              patch_size=1):
    """Insertion curve: from the baseline, pixels (or patches) come back in
    the same order; as deletion (higher AUC is better)."""
    return _gradlens.saliency_insertion(model, *_inputs(images, maps, targets), steps, baseline, blur_sigma,
                                        batch_size, patch_size)


def confidence_change(model, images, maps, targets, batch_size=256):
    """Average drop and increase in confidence (Grad-CAM++) of the image times
    its map (maps in [0, 1]): a dict of "average_drop" and "increase" [N]."""
    return _gradlens.saliency_confidence_change(model, *_inputs(images, maps, targets), batch_size)


def road(model, images, maps, targets, fractions=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), noise=0.01, seed=0,
         batch_size=256):
    """ROAD (remove and debias): the target's probability with each fraction
    of the pixels removed most relevant first ("morf" [N, F]) and least
    relevant first ("lerf"), filled by noisy linear imputation; their means
    over the fractions and "combined" = (lerf_mean - morf_mean) / 2."""
    return _gradlens.saliency_road(model, *_inputs(images, maps, targets), [float(f) for f in fractions], noise,
                                   seed, batch_size)


def linear_imputation(images, removed):
    """ROAD's imputation without noise: each removed pixel (removed bool
    [N, H, W]) the weighted mean of its 8 neighbours, one sparse system per
    image."""
    return _gradlens.linear_imputation(_maps(images), _maps(removed, _torch.bool))


def pointing_game(maps, masks, tolerance=15.0):
    """1 where the map's maximum lies within `tolerance` pixels of the object."""
    return _gradlens.saliency_pointing_game(_maps(maps), _maps(masks), tolerance)


def energy_pointing_game(maps, masks):
    """The share of the map's sum on the object."""
    return _gradlens.saliency_energy_pointing_game(_maps(maps), _maps(masks))


def relevance_rank_accuracy(maps, masks):
    """With K object pixels, the share of the map's K highest on the object."""
    return _gradlens.saliency_relevance_rank_accuracy(_maps(maps), _maps(masks))


def spearman(a, b):
    """Spearman rank correlation of each pair of maps a[i], b[i] [N, H, W]
    (ties at their average rank, as scipy.stats.spearmanr); float64 [N],
    NaN where a map is constant."""
    return _gradlens.saliency_spearman(_maps(a), _maps(b))


def ssim(a, b, data_range=1.0):
    """Structural similarity of each pair of maps [N, H, W] (values in [0,
    data_range]), as scikit-image's structural_similarity with its defaults;
    float64 [N]."""
    return _gradlens.saliency_ssim(_maps(a), _maps(b), data_range)


def model_randomisation(model, images, labels=None, method="gradcam", layer="", target="pred", cascading=True,
                        max_groups=0, seed=0, batch_size=64):
    """The model-parameter randomisation test (Adebayo et al. 2018): the maps
    of `images` on the trained model, then after randomising the parameter
    groups from the head down (cascading, or one at a time), compared image
    by image; a list of dicts {"group", "spearman" [N], "ssim" [N]}, one per
    step. The weights are restored afterwards. For the data-randomisation
    test, compare two models' maps with spearman() and ssim()."""
    y = None if labels is None else _maps(labels, _torch.int64)
    steps = _gradlens.saliency_model_randomisation(model, _maps(images, _torch.float32), y, method, layer, target,
                                                   cascading, max_groups, seed, batch_size)
    return [{"group": g, "spearman": s, "ssim": m} for g, s, m in steps]


def random_logit(model, images, classes, method="gradcam", layer="", seed=0, batch_size=64):
    """The random-logit test: each image's map (gradlens.attribution's
    `method`) for `classes` against its map for a random other class
    (seeded): a dict of "classes", "other_classes", "spearman" and "ssim"
    [N] (lower similarity: the map explains the class)."""
    return _gradlens.saliency_random_logit(model, _maps(images, _torch.float32), _maps(classes, _torch.int64),
                                           method, layer, seed, batch_size)
