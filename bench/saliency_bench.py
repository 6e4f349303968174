"""Peer side of bench/saliency_bench.cpp: Grad-CAM maps in Python torch.

usage: saliency_bench.py DIR THREADS BATCH
DIR holds x.npy [N,1,28,28] float32 (normalised) and the weights of the
gradlens ResNet18 (small stem, width 16) as DIR/params/<name>.npy, and
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
Prints "python_torch_s S", "python_gradcam_s S" and the maps' max abs
difference from gradlens' ("maps_max_abs_diff D").
"""
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

d, threads, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)


class Block(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inp != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + idt)


class ResNet18(nn.Module):
    def __init__(self, width=16, classes=10, inch=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inch, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        inp = width
        for s in range(4):
            planes = width << s
            layer = nn.Sequential(Block(inp, planes, 1 if s == 0 else 2), Block(planes, planes, 1))
            setattr(self, f"layer{s + 1}", layer)
            inp = planes
        self.fc = nn.Linear(inp, classes)

    def body(self, x):
        a = F.relu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(a))))

    def forward(self, x):
        return self.fc(self.body(x).mean((2, 3)))


model = ResNet18()
state = model.state_dict()
for name in state:
    state[name] = torch.from_numpy(np.load(os.path.join(d, "params", name + ".npy"))).reshape(state[name].shape)
model.load_state_dict(state)
model.eval()
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
for name, fn in (("torch", torch_maps), ("gradcam", gradcam_maps)):
    fn()  # warm-up
    t0 = time.perf_counter()
    maps = fn()
    print(f"python_{name}_s {time.perf_counter() - t0:.4f}")
    worst = max(worst, float((maps - ours).abs().max()))
print(f"maps_max_abs_diff {worst:.3g}")
