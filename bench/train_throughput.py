"""Peer side of train_throughput_bench: the same ResNet18 (small stem, given
width), batch, optimizer and thread count in Python torch. Prints images/s."""
import argparse
import gzip
import time

import numpy as np
import torch
import torch.nn as nn
import torchvision.models.resnet as R


class SmallResNet18(R.ResNet):
    def __init__(self, width):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(1, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(R.BasicBlock, width, 2)
        self.layer2 = self._make_layer(R.BasicBlock, width * 2, 2, stride=2)
        self.layer3 = self._make_layer(R.BasicBlock, width * 4, 2, stride=2)
        self.layer4 = self._make_layer(R.BasicBlock, width * 8, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 8, 10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lgrad", action="store_true", help="add the seed's L_grad (double backprop)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    d = "/usr/share/datasets/fashion-mnist/"
    with gzip.open(d + "t10k-images-idx3-ubyte.gz") as f:
        img = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[: a.batch]
    with gzip.open(d + "t10k-labels-idx1-ubyte.gz") as f:
        lab = np.frombuffer(f.read(), np.uint8, offset=8)[: a.batch]
    x = ((torch.from_numpy(img.copy()).float() / 255 - 0.2860) / 0.3530)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(lab.astype(np.int64))
    torch.manual_seed(0)
    m = SmallResNet18(a.width).to(memory_format=torch.channels_last)
    m.train()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)

    def lgrad_loss(xr):
        # CE + 0.1 * mean over same-class pairs of ||g_i - g_j||^2, with g the
        # per-sample input gradients of the summed CE (create_graph: double
        # backprop), from per-class sums as gradlens does.
        logits = m(xr)
        ce_sum = nn.functional.cross_entropy(logits, y, reduction="sum")
        (g,) = torch.autograd.grad(ce_sum, xr, create_graph=True)
        g = g.reshape(g.shape[0], -1)
        total, pairs = 0.0, 0
        for c in torch.unique(y):
            gc = g[y == c]
            n = gc.shape[0]
            if n < 2:
                continue
            total = total + n * (gc * gc).sum() - (gc.sum(0) ** 2).sum()
            pairs += n * (n - 1) // 2
        return nn.functional.cross_entropy(logits, y) + 0.1 * total / max(pairs, 1)

    def step():
        opt.zero_grad()
        if a.lgrad:
            lgrad_loss(x.detach().requires_grad_(True)).backward()
        else:
            nn.functional.cross_entropy(m(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    print(a.batch * a.steps / (time.perf_counter() - t))


if __name__ == "__main__":
    main()
