"""The small-stem ResNet18 that gradlens' benchmarks compare against, in plain
Python torch, loaded from the parameters the C++ side writes as
<dir>/params/<name>.npy (shared by extract_bench.py and saliency_bench.py)."""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


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


def load_params(model, d):
    """Loads <d>/params/<name>.npy into every entry of model's state dict
    (gradlens uses torchvision's names) and puts the model in eval mode."""
    state = model.state_dict()
    for name in state:
        p = os.path.join(d, "params", name + ".npy")
        state[name] = torch.from_numpy(np.load(p)).reshape(state[name].shape)
    model.load_state_dict(state)
    model.eval()
    return model


def load_small_resnet18(d):
    """ResNet18 (width 16, 10 classes, 1 channel) with gradlens' weights, in eval mode."""
    return load_params(ResNet18(), d)


def load_bench_model(d):
    """The model bench_data.h's write_peer_model wrote to d: torchvision's
    resnet18 with K classes when d/arch.txt says "torchvision-resnet18 K",
    else the small ResNet18; gradlens' weights, eval mode."""
    try:
        arch = open(os.path.join(d, "arch.txt")).read().split()
    except FileNotFoundError:
        return load_small_resnet18(d)
    import torchvision
    return load_params(torchvision.models.resnet18(num_classes=int(arch[1])), d)


REPRESENTATIONS = ("gradcam-weights", "input-grad", "param-grad", "features", "activations", "logits", "probs")


def shared_passes(model, x, batch):
    """Every representation gradlens extracts (Grad-CAM weights at layer4 and
    input gradients for the predicted class, head parameter gradients with
    the predicted label, features, layer4 activations, logits, probs) with
    one forward and two backward passes per batch, as gradlens does: a dict
    of [N, ...] tensors."""
    outs = {k: [] for k in REPRESENTATIONS}
    for s in range(0, x.shape[0], batch):
        xb = x[s:s + batch].clone().requires_grad_(True)
        a = model.body(xb)
        f = a.mean((2, 3))
        z = model.fc(f)
        zd = z.detach()
        probs = torch.softmax(zd, 1)
        onehot = F.one_hot(zd.argmax(1), z.shape[1]).to(z.dtype)
        ga, = torch.autograd.grad(z, [a], onehot, retain_graph=True)
        gx, = torch.autograd.grad(z, [xb], probs - onehot)
        delta = probs - onehot
        outs["gradcam-weights"].append(ga.mean((2, 3)))
        outs["input-grad"].append(gx.flatten(1))
        outs["param-grad"].append(torch.cat([(delta[:, :, None] * f.detach()[:, None, :]).flatten(1), delta], 1))
        outs["features"].append(f.detach())
        outs["activations"].append(a.detach().flatten(1))
        outs["logits"].append(zd)
        outs["probs"].append(probs)
    return {k: torch.cat(v) for k, v in outs.items()}
