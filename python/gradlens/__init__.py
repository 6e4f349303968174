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
import os as _os
import tempfile as _tempfile

import torch as _torch  # before the native module: it links against this torch

from . import _gradlens
from ._convert import tensor as _tensor

__all__ = ["load_model", "extract", "attribution", "representation_names", "cluster", "decomposition", "metrics",
           "saliency"]


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
            grad_labels=("pred",), pool="none", batch_size=100):
    """Representations of `images` (float [N, C, H, W], normalised as the model
    expects): a dict from output name (as `gradlens extract` names its files:
    "gradcam-weights", "gradcam-weights.true", "input-grad", "param-grad",
    "features", "activations", "logits", "probs") to a float32 tensor
    [N, D], plus "preds". `labels` [N] is needed for the "true"/"loss"
    targets and labels."""
    reps = representation_names() if representations is None else list(representations)
    y = None if labels is None else _tensor(labels, _torch.int64)
    return _gradlens.extract(model, _tensor(images, _torch.float32), y, reps, layer, list(gradcam_targets),
                             list(grad_labels), pool, batch_size)


def attribution(model, images, labels=None, method="gradcam", layer="", target="pred", smoothgrad_samples=25,
                smoothgrad_sigma=0.15, ig_steps=64, ig_rule="trapezoid", seed=0, batch_size=100):
    """Attribution maps (`gradlens saliency`'s methods: gradcam, gradcam++,
    gradient, smoothgrad, ig): a dict with "maps" (float32 [N, H, W] in
    [0, 1] at the input size), "raw" (before upsampling and scaling),
    "weights" (CAM channel weights), "attributions" (IG), "logits", "preds"."""
    y = None if labels is None else _tensor(labels, _torch.int64)
    return _gradlens.attribution(model, _tensor(images, _torch.float32), y, method, layer, target,
                                 smoothgrad_samples, smoothgrad_sigma, ig_steps, ig_rule, seed, batch_size)


from . import cluster, decomposition, influence, label_noise, metrics, saliency  # noqa: E402,F401
