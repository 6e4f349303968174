"""Training-data attribution (docs/label-noise.md): TracIn-CP over a list of
checkpoints, the final linear layer's per-sample gradients exactly (from
K + D numbers per image) and, with `param_layers`, convolutions' gradients
randomly projected without forming them. The CLI's `gradlens attribute` /
`label-errors` run the same functions over a training record.

A checkpoint is a gradlens.Model, a torch.jit.ScriptModule, or a file
(TorchScript or gradlens checkpoint). Images are float [N, C, H, W],
normalised as the model expects; labels are class indices."""
import torch as _torch

from . import _gradlens
from ._convert import tensor as _tensor

GradientFactors = _gradlens.GradientFactors


def _model(m):
    from . import Model, load_model
    return m if isinstance(m, Model) else load_model(m)


def gradient_factors(model, images, labels, param_layers=(), proj_dim=1024, proj_seed=0, projection="gaussian",
                     batch_size=500):
    """The per-sample gradient factors of the cross-entropy with `labels`
    under one checkpoint: .delta (softmax - onehot, [N, K]), .features (the
    final linear layer's input, [N, D]), .logits, and .projected ([N, P], the
    projected gradients of `param_layers`, e.g. ["layer4.1.conv2"]; native
    ResNets only)."""
    return _gradlens.gradient_factors(_model(model), _tensor(images, _torch.float32), _tensor(labels, _torch.int64),
                                      list(param_layers), proj_dim, proj_seed, projection, batch_size)


def tracin(checkpoints, train_images, train_labels, query_images, query_labels, step_sizes, top_k=10, cosine=False,
           param_layers=(), proj_dim=1024, proj_seed=0, projection="gaussian", batch_size=500, return_scores=False):
    """TracIn-CP: sum over checkpoints t of step_sizes[t] times the inner
    product of the training image's and the query's loss gradients (cosine:
    each term divided by the two norms). Returns a dict: "proponents" /
    "opponents" (int64 [Q, top_k] training indices, strongest first),
    "proponent_scores" / "opponent_scores", and with return_scores "scores"
    (float64 [Q, N])."""
    opts = dict(param_layers=param_layers, proj_dim=proj_dim, proj_seed=proj_seed, projection=projection,
                batch_size=batch_size)
    train, queries = [], []
    for c in checkpoints:
        m = _model(c)
        train.append(gradient_factors(m, train_images, train_labels, **opts))
        queries.append(gradient_factors(m, query_images, query_labels, **opts))
    return _gradlens.tracin(train, queries, [float(s) for s in step_sizes], top_k, cosine, return_scores)


def self_influence(checkpoints, images, labels, step_sizes, param_layers=(), proj_dim=1024, proj_seed=0,
                   projection="gaussian", batch_size=500):
    """sum_t step_sizes[t] ||gradient of image i's loss under checkpoint t||^2,
    float64 [N]: TracIn's score for mislabelled training images."""
    factors = [gradient_factors(_model(c), images, labels, param_layers, proj_dim, proj_seed, projection, batch_size)
               for c in checkpoints]
    return _gradlens.self_influence(factors, [float(s) for s in step_sizes])
