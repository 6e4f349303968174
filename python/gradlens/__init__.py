"""gradlens from Python: image classifiers evaluated through their gradients.

    import gradlens
    model = gradlens.load_model("model.pt")          # TorchScript file, ScriptModule or checkpoint
    reps = gradlens.extract(model, images, labels)    # dict of torch tensors
    maps = gradlens.attribution(model, images, method="gradcam")["maps"]
    gradlens.cluster.KMeans(n_clusters=10).fit_predict(reps["features"])

Tensors in and out (numpy arrays are accepted); the work runs in the same
C++ library as the `gradlens` command, with the GIL released. Documentation:
docs/python.md.
"""
import json as _json
import os as _os
import tempfile as _tempfile

import torch as _torch  # before the native module: it links against this torch

from . import _gradlens
from ._convert import tensor as _tensor

__all__ = ["load_model", "extract", "attribution", "representation_names", "audit", "hessian_top_eigenvalues",
           "hessian_trace", "evaluate", "cluster", "decomposition", "metrics", "saliency", "influence", "label_noise"]


def _check_torch():
    built = _gradlens.__torch_version__.split(".")[:2]
    found = _torch.__version__.split("+")[0].split(".")[:2]
    if built != found:
        raise ImportError(
            f"gradlens was built against LibTorch {_gradlens.__torch_version__} but imports torch "
            f"{_torch.__version__} from {_torch.__file__}; use the Python whose torch matches (Debian's "
            f"/usr/bin/python3 for Debian's libtorch-dev) or rebuild gradlens against this torch")


_check_torch()

# As the gradlens command: all cores, unless OMP_NUM_THREADS says otherwise
# (Debian's torch starts with one thread). It is torch's own setting, so
# torch.set_num_threads() after the import changes it for both.
if "OMP_NUM_THREADS" not in _os.environ and _torch.get_num_threads() < (_os.cpu_count() or 1):
    _torch.set_num_threads(_os.cpu_count() or 1)

Model = _gradlens.Model
Interrupted = _gradlens.Interrupted


def _forward(self, images):
    """Logits [N, K] of float images [N, C, H, W] (eval mode, no gradients)."""
    return self._forward(_tensor(images, _torch.float32))


Model.forward = _forward


def load_model(model, image_size=0, channels=0, output_index=-1, output_key="", class_tokens=-1, device="cpu"):
    """A classifier: a TorchScript file, a torch.jit.ScriptModule, a gradlens
    checkpoint or an architecture name (resnet18 ... resnet152, fresh
    weights). image_size / channels: the probe image (0: the file's
    gradlens.json, else 28 px and the first convolution's channels);
    output_index / output_key: where a tuple or dict output keeps the logits;
    class_tokens: leading tokens a ViT's token layers drop (-1: auto)."""
    if isinstance(model, _torch.jit.ScriptModule):
        with _tempfile.TemporaryDirectory() as d:
            path = _os.path.join(d, "model.pt")
            _torch.jit.save(model, path)
            return _gradlens.load_model(path, image_size, channels, output_index, output_key, class_tokens, device)
    return _gradlens.load_model(str(model), image_size, channels, output_index, output_key, class_tokens, device)


def representation_names():
    return list(_gradlens.representation_names())


def extract(model, images, labels=None, representations=None, layer="", gradcam_targets=("pred",),
            grad_labels=("pred",), pool="none", batch_size=100, param_layer=""):
    """Representations of `images` (float [N, C, H, W], normalised as the model
    expects): a dict from output name (as `gradlens extract` names its files:
    "gradcam-weights", "gradcam-weights.true", "input-grad", "param-grad",
    "features", "activations", "logits", "probs") to a float32 tensor
    [N, D], plus "preds". `labels` [N] is needed for the "true"/"loss"
    targets and labels. `param_layer` (`--param-layer`): "" or "fc" for the
    final linear layer's per-sample gradients, or a Conv2d's name for its
    weight (and bias) gradients."""
    reps = representation_names() if representations is None else list(representations)
    y = None if labels is None else _tensor(labels, _torch.int64)
    return _gradlens.extract(model, _tensor(images, _torch.float32), y, reps, layer, list(gradcam_targets),
                             list(grad_labels), pool, batch_size, param_layer)


def attribution(model, images, labels=None, method="gradcam", layer="", target="pred", smoothgrad_samples=25,
                smoothgrad_sigma=0.15, ig_steps=64, ig_rule="trapezoid", seed=0, batch_size=100):
    """Attribution maps (`gradlens saliency`'s methods: gradcam, gradcam++,
    gradient, smoothgrad, ig): a dict with "maps" (float32 [N, H, W] in
    [0, 1] at the input size), "raw" (before upsampling and scaling),
    "weights" (CAM channel weights), "attributions" (IG), "logits", "preds"."""
    y = None if labels is None else _tensor(labels, _torch.int64)
    return _gradlens.attribution(model, _tensor(images, _torch.float32), y, method, layer, target,
                                 smoothgrad_samples, smoothgrad_sigma, ig_steps, ig_rule, seed, batch_size)


def audit(x, labels=None, num_classes=0, name="x", uses_true_labels=False, head_identity=None, identity_rtol=1e-5,
          rank_eps=0.0, rank_rows=5000, leakage_accuracy=0.95):
    """The validity audit of a representation x [N, D] (as `gradlens analyze`
    reports it): distinct and zero rows, numerical rank (numpy's
    matrix_rank tolerance), whether it equals the Grad-CAM head identity
    `head_identity` [N, D] (W[c] / (H W) for a GAP + linear head), the
    nearest-class-mean accuracy against `labels` [N] (with num_classes) and
    the majority rate, and the verdicts "degenerate" (a fixed function of the
    class) and "label_informed" (uses_true_labels), with warnings. A dict."""
    y = None if labels is None else _tensor(labels, _torch.int64)
    h = None if head_identity is None else _tensor(head_identity, _torch.float32)
    return _gradlens.audit(_tensor(x), y, num_classes, name, uses_true_labels, h, identity_rtol, rank_eps, rank_rows,
                           leakage_accuracy)


def _hessian(model, images, labels, wrt, params, k, max_iter, tol, trace, trace_max_iter, trace_min_iter, trace_tol,
             seed, batch_size, one_batch):
    return _gradlens.hessian_spectrum(model, _tensor(images, _torch.float32), _tensor(labels, _torch.int64), wrt,
                                      list(params), k, max_iter, tol, trace, trace_max_iter, trace_min_iter, trace_tol,
                                      seed, batch_size, one_batch)


def hessian_top_eigenvalues(model, images, labels, k=1, wrt="params", params=(), max_iter=100, tol=1e-3, seed=0,
                            batch_size=100, one_batch=False):
    """The k largest-magnitude eigenvalues of the Hessian of the mean
    cross-entropy of `model` on `images` [N, C, H, W] (normalised as the model
    expects) with `labels` [N], with respect to its parameters (wrt="params";
    `params`: name prefixes, empty = all) or the input (wrt="input", the
    first batch), in eval mode: power iteration with deflation, as
    PyHessian and `gradlens hessian`. Returns a dict: "eigenvalues" (list, in
    the order found), "eigenvectors" (one list of tensors per eigenvalue,
    shaped as the variables), "iterations", "samples", "dimension"."""
    return _hessian(model, images, labels, wrt, params, k, max_iter, tol, False, 1, 1, 1e-3, seed, batch_size,
                    one_batch)


def hessian_trace(model, images, labels, wrt="params", params=(), max_iter=100, min_iter=2, tol=1e-3, seed=0,
                  batch_size=100, one_batch=False):
    """Hutchinson's estimate of the trace of the same Hessian (Rademacher
    probes until the running mean changes by less than `tol`, between
    min_iter and max_iter probes). Returns a dict: "trace", "std_error",
    "samples" (v^T H v per probe)."""
    r = _hessian(model, images, labels, wrt, params, 1, 1, 1.0, True, max_iter, min_iter, tol, seed, batch_size,
                 one_batch)
    return {"trace": r["trace"], "std_error": r["trace_std_error"], "samples": r["trace_samples"],
            "dimension": r["dimension"]}


def evaluate(models=("default",), data="fashion-mnist", per_class=100, out="gradlens-report", layer="", target="pred",
             pca_dims=50, normalize="none", k=0, kmeans_n_init=10, gmm_covariance="full", flip_fraction=0.05,
             neighbors=10, label_error_embedding="param-grad", arch_epochs=2, arch_train_per_class=0, batch_size=100,
             cache=True, data_dir="", image_size=0, resize=0, mean=(), std=(), input_range="", channels=0,
             skip_bad_images=False, test_fraction=0.2, train_per_class=0, subset="first", device="cpu", seed=0,
             conv_algorithm="auto", verify=True, compare_methods=(), quick=False):
    """`gradlens evaluate`: the seed's protocol for each model spec ("default",
    resnet18 ... resnet152, or a checkpoint / TorchScript file) on `per_class`
    test images per class, writing the report directory `out` (report.html,
    the tables, figures). Keywords are the command's flags (docs/evaluate.md).
    Returns the report's data: report.json as a dict (per model:
    representations with cos_sim and KMeans/GMM scores, grad_cam metrics,
    misclassification), plus "out", "report_html", "indices" (positions in
    the test split) and, per model, the tensors "labels", "preds",
    "confidence", "gradcam_maps" [N, H, W] and "label_error_scores".
    `compare_methods`: names or "a,b"; empty: all five on data with object
    masks, none otherwise; "none": off. `quick`: skip the method comparison
    and the scoring against masks."""
    specs = [models] if isinstance(models, str) else list(models)
    if isinstance(compare_methods, str):
        compare_methods = [m for m in compare_methods.split(",") if m]
    r = _gradlens.evaluate(specs, str(data), str(data_dir), image_size, resize, [float(v) for v in mean],
                           [float(v) for v in std], input_range, channels, skip_bad_images, test_fraction,
                           train_per_class, subset, per_class, str(out), layer, target, pca_dims, normalize, k,
                           kmeans_n_init, gmm_covariance, flip_fraction, neighbors, label_error_embedding,
                           arch_epochs, arch_train_per_class, batch_size, cache, device, seed, conv_algorithm, verify,
                           list(compare_methods), quick)
    with open(_os.path.join(r["out"], "report.json")) as f:
        report = _json.load(f)
    for m, t in zip(report["models"], r["models"]):
        m.update({key: value for key, value in t.items() if key != "spec"})
        m["label_error_scores"] = dict(m["label_error_scores"])
    report.update(out=r["out"], report_html=r["report_html"], indices=r["indices"])
    return report



def train_options():
    """`gradlens train`'s options with their defaults (the command's: the
    embedded default model's recipe), by flag name with underscores."""
    return _gradlens.train_options()


def train(out="", **options):
    """`gradlens train`: trains a ResNet on `data` (default Fashion-MNIST) and
    writes `out`/model.ckpt and summary.json ("": the default-model cache).
    Keywords are the command's flags (train_options() lists them and their
    defaults; docs/training.md explains them), e.g. epochs=2, width=8,
    lambda_grad=0.1, save_every_epoch=True. Returns a dict: "checkpoint",
    "summary", "record" (the training record's directory, or ""), "model",
    "parameters", "test_accuracy", "seconds", and "epochs" (per epoch:
    train/test loss and accuracy, mean learning rate, seconds, loss terms)."""
    return _gradlens.train(dict(options, out=str(out)))

from . import cluster, decomposition, influence, label_noise, metrics, saliency  # noqa: E402,F401
