"""Peer side of bench/saliency_bench.cpp: Grad-CAM maps in Python torch.

usage: saliency_bench.py DIR THREADS BATCH [torch]
DIR holds x.npy [N,C,H,W] float32 (normalised) and the weights of the
gradlens ResNet18 as DIR/params/<name>.npy: the small stem, width 16 one
(bench_resnet.py), or, when DIR/arch.txt says "torchvision-resnet18 K",
torchvision's resnet18 with K classes (gradlens uses torchvision's names), and
DIR/logits.npy and DIR/ours_maps.npy from gradlens. Builds the same network
(torchvision's layout with a width option), loads the weights by name, checks
the logits, and times Grad-CAM display maps at layer4 for the predicted class
(ReLU(sum_k alpha_k A_k), bilinear upsampling to 28x28, per-image min-max),
two ways:
  torch:   batched torch ops, one forward + one backward per batch (what
           gradlens does);
  gradcam: pytorch-grad-cam's code path (forward hook + tensor hook on layer4,
           numpy weights and CAM, per-image scale_cam_image twice; resize with
           torch's bilinear interpolate since OpenCV is not installed).
With a 4th argument "torch", times the batched torch ops only. Prints
"python_torch_s S", "python_gradcam_s S" (unless "torch") and the maps' max
abs difference from gradlens' ("maps_max_abs_diff D").
"""
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from bench_resnet import load_params, load_small_resnet18

d, threads, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
only_torch = len(sys.argv) > 4 and sys.argv[4] == "torch"
torch.set_num_threads(threads)


def load_torchvision_resnet18(d, classes):
    import torchvision
    net = load_params(torchvision.models.resnet18(num_classes=classes), d)

    def body(x):
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        return net.layer4(net.layer3(net.layer2(net.layer1(x))))
    net.body = body
    return net


try:
    arch = open(f"{d}/arch.txt").read().split()
except FileNotFoundError:
    arch = []
model = load_torchvision_resnet18(d, int(arch[1])) if arch else load_small_resnet18(d)
x = torch.from_numpy(np.load(f"{d}/x.npy"))
n = x.shape[0]
with torch.no_grad():
    print("logits_max_abs_diff", float((model(x) - torch.from_numpy(np.load(f"{d}/logits.npy"))).abs().max()))


def torch_maps():
    out = []
    for s in range(0, n, batch):
        xb = x[s:s + batch]
        with torch.no_grad():
            a = model.body(xb)
        a = a.detach().requires_grad_(True)
        z = model.fc(a.mean((2, 3)))
        g1 = F.one_hot(z.detach().argmax(1), z.shape[1]).to(z.dtype)
        g, = torch.autograd.grad(z, [a], g1)
        cam = torch.relu((g.mean((2, 3))[:, :, None, None] * a.detach()).sum(1))
        up = F.interpolate(cam[:, None], size=xb.shape[2:], mode="bilinear", align_corners=False)[:, 0]
        f = up.flatten(1)
        lo, hi = f.min(1).values, f.max(1).values
        rng = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
        m = (up - lo[:, None, None]) / rng[:, None, None]
        out.append(torch.where((hi > lo)[:, None, None], m, torch.zeros_like(m)))
    return torch.cat(out)


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


class Hooks:
    def __init__(self, layer):
        self.activations, self.gradients = [], []
        layer.register_forward_hook(self.save)

    def save(self, module, inp, output):
        if not output.requires_grad:  # as pytorch-grad-cam: nothing to hook (no-grad passes)
            return
        self.activations.append(output.cpu().detach())

        def store(grad):
            self.gradients = [grad.cpu().detach()] + self.gradients
        output.register_hook(store)


hooks = Hooks(model.layer4)


def gradcam_maps():
    out = []
    for s in range(0, n, batch):
        hooks.activations, hooks.gradients = [], []
        xb = x[s:s + batch].clone().requires_grad_(True)  # BaseCAM.forward does the same
        outputs = model(xb)
        cats = np.argmax(outputs.cpu().data.numpy(), axis=-1)
        model.zero_grad()
        loss = sum(o[c] for o, c in zip(outputs, cats))
        loss.backward(retain_graph=True)
        a = hooks.activations[0].numpy()
        g = hooks.gradients[0].numpy()
        cam = np.maximum((np.mean(g, axis=(2, 3))[:, :, None, None] * a).sum(axis=1), 0)
        scaled = scale_cam_image(cam, (xb.shape[3], xb.shape[2]))[:, None, :]
        out.append(torch.from_numpy(scale_cam_image(np.mean(np.maximum(scaled, 0), axis=1))))
    return torch.cat(out)


ours = torch.from_numpy(np.load(f"{d}/ours_maps.npy"))
worst = 0.0
for name, fn in (("torch", torch_maps),) + ((("gradcam", gradcam_maps),) if not only_torch else ()):
    fn()  # warm-up
    t0 = time.perf_counter()
    maps = fn()
    print(f"python_{name}_s {time.perf_counter() - t0:.4f}")
    worst = max(worst, float((maps - ours).abs().max()))
print(f"maps_max_abs_diff {worst:.3g}")
