"""Reference values for tests/extract/extract_peer_test.cpp (Debian's torch).

usage: extract_torch_reference.py OUT_DIR
Builds torchvision's resnet18 (10 classes, seeded weights, random BatchNorm
statistics), saves it as TorchScript (OUT_DIR/model.pt), and computes with a
per-sample loop in eval mode, for x = OUT_DIR/x.npy and y = OUT_DIR/y.npy:
  gc_<layer>_<target>.npy  Grad-CAM weights (mean of d t / d A over pixels),
                           layer in {layer3, layer4}, target in {pred, true, loss}
  ig_<label>.npy           d CE / d x flattened, label in {pred, true}
  pg_<label>.npy           [dCE/dW flattened, dCE/db] of fc
  features.npy logits.npy  penultimate features and logits
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

out = sys.argv[1]
torch.manual_seed(0)
model = torchvision.models.resnet18(weights=None, num_classes=10)
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
model.eval()
torch.jit.script(model).save(f"{out}/model.pt")

x = torch.randn(4, 3, 48, 48)
y = torch.tensor([3, 1, 4, 1])
np.save(f"{out}/x.npy", x.numpy())
np.save(f"{out}/y.npy", y.numpy())


def forward_from(a, layer):
    """Runs the network from the maps of `layer` to the logits."""
    names = ["layer1", "layer2", "layer3", "layer4"]
    for n in names[names.index(layer) + 1:]:
        a = getattr(model, n)(a)
    f = torch.flatten(model.avgpool(a), 1)
    return f, model.fc(f)


def body(x, layer):
    a = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    for n in ["layer1", "layer2", "layer3", "layer4"]:
        a = getattr(model, n)(a)
        if n == layer:
            return a


res = {}
for i in range(x.shape[0]):
    xi = x[i:i + 1]
    yi = y[i:i + 1]
    for layer in ("layer3", "layer4"):
        a = body(xi, layer).detach().requires_grad_(True)
        _, z = forward_from(a, layer)
        pred = int(z.argmax(1))
        for target, t in (("pred", z[0, pred]), ("true", z[0, int(yi)]), ("loss", F.cross_entropy(z, yi))):
            g, = torch.autograd.grad(t, a, retain_graph=True)
            res.setdefault(f"gc_{layer}_{target}", []).append(g.mean((2, 3))[0])
    xg = xi.clone().requires_grad_(True)
    f, z = forward_from(body(xg, "layer4"), "layer4")
    pred = z.argmax(1)
    for label, lab in (("pred", pred), ("true", yi)):
        loss = F.cross_entropy(z, lab)
        gx, gw, gb = torch.autograd.grad(loss, [xg, model.fc.weight, model.fc.bias], retain_graph=True)
        res.setdefault(f"ig_{label}", []).append(gx.flatten())
        res.setdefault(f"pg_{label}", []).append(torch.cat([gw.flatten(), gb]))
    res.setdefault("features", []).append(f[0].detach())
    res.setdefault("logits", []).append(z[0].detach())

for k, v in res.items():
    np.save(f"{out}/{k}.npy", torch.stack(v).numpy().astype(np.float32))
print("ok", len(res))
