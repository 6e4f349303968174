"""Reference Grad-CAM / Grad-CAM++ maps for tests/saliency/cam_peer_test.cpp.

usage: cam_reference.py DIR   (run with Debian's /usr/bin/python3)

DIR holds the weights of a gradlens ResNet18 (small stem: 3x3 conv stride 1,
no max-pool; width 64 = torchvision's) as DIR/params/<name>.npy, the input
batch DIR/x.npy [N, 1, 28, 28] float32, the labels DIR/y.npy and the gradlens
logits DIR/logits.npy. This script builds torchvision's resnet18 with that
stem, loads the weights by name, checks the logits, and computes the maps the
way pytorch-grad-cam (jacobgil/pytorch-grad-cam 1.4) does. pytorch-grad-cam
itself is not a Debian package and is not installed here, so its code path is
re-created below:

  * ActivationsAndGradients: a forward hook on the target layer keeps its
    output and registers a tensor hook that keeps the gradient;
  * the targets are ClassifierOutputTarget(c) (the logit of class c: the
    prediction when no target is given, or the true class), or the
    cross-entropy with the true label (a custom target callable);
    loss = sum of the targets over the batch; model.zero_grad(); backward;
  * weights: GradCAM = mean of the gradients over (2, 3); GradCAMPlusPlus =
    eq. 19 with eps 1e-6 and aij zeroed where the gradient is 0;
  * cam = ReLU(sum_k w_k A_k); scale_cam_image: per image img - min,
    / (1e-7 + max), resize to the input size; aggregate_multi_layers: ReLU,
    mean over the (one) layer, scale_cam_image again.
  pytorch-grad-cam resizes with cv2.resize (INTER_LINEAR); OpenCV is not
  installed either, so the resize is torch's interpolate(mode="bilinear",
  align_corners=False), the same half-pixel geometry.

Writes DIR/ref_<method>_<layer>_<target>.npy (maps [N, 28, 28]) and
DIR/refw_<method>_<layer>_<target>.npy (weights [N, C]) for method in
{gradcam, gradcampp}, layer in {layer3, layer4}, target in {pred, true, loss}.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

d = sys.argv[1]
torch.manual_seed(0)
model = torchvision.models.resnet18(weights=None, num_classes=10)
model.conv1 = torch.nn.Conv2d(1, 64, 3, 1, 1, bias=False)
model.maxpool = torch.nn.Identity()
state = model.state_dict()
for name in state:
    p = os.path.join(d, "params", name + ".npy")
    state[name] = torch.from_numpy(np.load(p)).reshape(state[name].shape)
model.load_state_dict(state)
model.eval()

x = torch.from_numpy(np.load(f"{d}/x.npy"))
y = torch.from_numpy(np.load(f"{d}/y.npy"))
with torch.no_grad():
    diff = float((model(x) - torch.from_numpy(np.load(f"{d}/logits.npy"))).abs().max())
assert diff < 1e-4, f"logits differ from gradlens' by {diff}"


class ActivationsAndGradients:
    def __init__(self, model, layer):
        self.model = model
        self.activations, self.gradients = [], []
        layer.register_forward_hook(self.save_activation)
        layer.register_forward_hook(self.save_gradient)

    def save_activation(self, module, input, output):
        self.activations.append(output.cpu().detach())

    def save_gradient(self, module, input, output):
        def _store_grad(grad):
            self.gradients = [grad.cpu().detach()] + self.gradients
        output.register_hook(_store_grad)

    def __call__(self, x):
        self.activations, self.gradients = [], []
        return self.model(x)


def scale_cam_image(cam, target_size=None):
    result = []
    for img in cam:
        img = img - np.min(img)
        img = img / (1e-7 + np.max(img))
        if target_size is not None:
            t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None, None]
            img = F.interpolate(t, size=(target_size[1], target_size[0]), mode="bilinear",
                                align_corners=False)[0, 0].numpy()
        result.append(img)
    return np.float32(result)


def gradcam_weights(grads, activations):
    return np.mean(grads, axis=(2, 3))


def gradcampp_weights(grads, activations):
    grads_power_2 = grads ** 2
    grads_power_3 = grads_power_2 * grads
    sum_activations = np.sum(activations, axis=(2, 3))
    eps = 0.000001
    aij = grads_power_2 / (2 * grads_power_2 + sum_activations[:, :, None, None] * grads_power_3 + eps)
    aij = np.where(grads != 0, aij, 0)
    weights = np.maximum(grads, 0) * aij
    return np.sum(weights, axis=(2, 3))


def compute(method, layer_name, target):
    layer = getattr(model, layer_name)
    hooks = ActivationsAndGradients(model, layer)
    inp = x.clone().requires_grad_(True)
    outputs = hooks(inp)
    if target == "pred":
        cats = np.argmax(outputs.cpu().data.numpy(), axis=-1)
        targets = [lambda o, c=c: o[c] for c in cats]
    elif target == "true":
        targets = [lambda o, c=int(c): o[c] for c in y]
    else:
        targets = [lambda o, c=int(c): F.cross_entropy(o[None], torch.tensor([c])) for c in y]
    model.zero_grad()
    loss = sum(t(o) for t, o in zip(targets, outputs))
    loss.backward(retain_graph=True)
    a = hooks.activations[0].numpy()
    g = hooks.gradients[0].numpy()
    w = (gradcam_weights if method == "gradcam" else gradcampp_weights)(g, a)
    cam = (w[:, :, None, None] * a).sum(axis=1)
    cam = np.maximum(cam, 0)
    scaled = scale_cam_image(cam, (x.shape[3], x.shape[2]))[:, None, :]
    cam_per_layer = np.maximum(np.concatenate([scaled], axis=1), 0)
    result = scale_cam_image(np.mean(cam_per_layer, axis=1))
    return result, w


# Hooks pile up on the layers otherwise: rebuild the module hooks per call.
count = 0
for method in ("gradcam", "gradcampp"):
    for layer_name in ("layer3", "layer4"):
        for target in ("pred", "true", "loss"):
            for m in model.modules():
                m._forward_hooks.clear()
            maps, w = compute(method, layer_name, target)
            np.save(f"{d}/ref_{method}_{layer_name}_{target}.npy", maps.astype(np.float32))
            np.save(f"{d}/refw_{method}_{layer_name}_{target}.npy", w.astype(np.float32))
            count += 1
print("ok", count, "logits_max_abs_diff", diff)
