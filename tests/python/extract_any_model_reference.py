"""Reference values for tests/extract/extract_peer_test.cpp on models that
are not ResNets (Debian's torch and torchvision): torchvision's
mobilenet_v2, vgg11_bn, densenet121, efficientnet_b0, convnext_tiny and a
small VisionTransformer (seeded weights, 64 px, 10 classes), saved as
TorchScript (OUT_DIR/<arch>.pt), computed on one batch in eval mode the
way pytorch-grad-cam and Captum do it, with forward hooks:
  <arch>_gc_<i>_<target>.npy  Grad-CAM weights at LAYERS[arch][i] (mean of
                              d t / d A over positions; a ViT's tokens
                              [1, 1+h*w, D] read as maps [1, D, h, w] without
                              the class token), target in {pred, true, loss}
  <arch>_ig_<label>.npy       d CE / d x flattened, label in {pred, true}
  <arch>_pg_<label>.npy       [dCE/dW flattened, dCE/db] of the last Linear
  <arch>_cg_<label>.npy       [dCE/dW flattened, dCE/db] of the convolution
                              CONV[arch], one image at a time (the definition
                              of a per-sample gradient, as TRAK and Opacus use it)
  <arch>_features.npy, <arch>_logits.npy   the last Linear's input, logits
and x.npy, y.npy; the model also traced (OUT_DIR/<arch>.traced.pt).

usage: extract_any_model_reference.py OUT_DIR [ARCH ...]   (default: all of LAYERS)
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

LAYERS = {
    "mobilenet_v2": ["features", "features.14"],
    "vgg11_bn": ["features", "features.10"],
    "densenet121": ["features", "features.denseblock2.denselayer3"],
    "efficientnet_b0": ["features", "features.2.1.block"],
    "convnext_tiny": ["features", "features.3.1.block"],
    "vit": ["encoder.layers.encoder_layer_1.ln_1", "encoder.layers.encoder_layer_0"],
}

# A groups-1 convolution of each model, reached through a Sequential, an
# `if` decided by the model's configuration, an overloaded forward or a
# helper method; strided, padded, with and without a bias.
CONV = {
    "mobilenet_v2": "features.17.conv.2",
    "vgg11_bn": "features.8",
    "densenet121": "features.denseblock4.denselayer16.conv2",
    "efficientnet_b0": "features.0.0",
    "convnext_tiny": "features.0.0",
    "vit": "conv_proj",
}

out = sys.argv[1]
torch.manual_seed(0)
x = torch.randn(3, 3, 64, 64)
y = torch.tensor([3, 1, 4])
np.save(f"{out}/x.npy", x.numpy())
np.save(f"{out}/y.npy", y.numpy())


def as_maps(t):
    if t.dim() != 3:
        return t
    side = int(round((t.size(1) - 1) ** 0.5))
    return t[:, 1:, :].reshape(t.size(0), side, side, t.size(2)).permute(0, 3, 1, 2)


for arch, layers in LAYERS.items():
    if len(sys.argv) > 2 and arch not in sys.argv[2:]:
        continue
    torch.manual_seed(0)
    if arch == "vit":
        model = torchvision.models.VisionTransformer(
            image_size=64, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10)
        torch.nn.init.normal_(model.heads.head.weight, std=0.5)  # torchvision starts it at zero: all logits 0
    else:
        model = getattr(torchvision.models, arch)(num_classes=10)
    model.eval()
    torch.jit.save(torch.jit.script(model), f"{out}/{arch}.pt")
    torch.jit.save(torch.jit.trace(model, x, check_trace=False), f"{out}/{arch}.traced.pt")
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    kept = {}
    for i, name in enumerate(layers):
        model.get_submodule(name).register_forward_hook(lambda m, a, o, i=i: kept.__setitem__(i, o))
    head.register_forward_hook(lambda m, a, o: kept.__setitem__("features", a[0]))
    # One batch, as pytorch-grad-cam and Captum run: in eval mode the images
    # are independent, so the gradient of a sum of per-image targets is each
    # image's own gradient. (MobileNetV2's ReLU6 saturates under random
    # weights: a per-image loop convolves with other kernels than a batch
    # does and flips a few clamps, which moves its input gradient by 0.2%.)
    res = {}
    xb = x.clone().requires_grad_(True)
    z = model(xb)
    pred = z.argmax(1)
    feats = kept["features"].detach()
    rows = torch.arange(len(y))
    for i in range(len(layers)):
        for target, t in (("pred", z[rows, pred]), ("true", z[rows, y]),
                          ("loss", F.cross_entropy(z, y, reduction="none"))):
            g, = torch.autograd.grad(t.sum(), kept[i], retain_graph=True)
            res[f"{arch}_gc_{i}_{target}"] = as_maps(g).mean((2, 3))
    for label, lab in (("pred", pred), ("true", y)):
        gx, = torch.autograd.grad(F.cross_entropy(z, lab, reduction="sum"), xb, retain_graph=True)
        res[f"{arch}_ig_{label}"] = gx.flatten(1)
        # The head's per-image gradient: one image at a time through the head.
        pg = []
        for n in range(len(y)):
            zn = head(feats[n:n + 1])
            gw, gb = torch.autograd.grad(F.cross_entropy(zn, lab[n:n + 1]), [head.weight, head.bias])
            pg.append(torch.cat([gw.flatten(), gb]))
        res[f"{arch}_pg_{label}"] = torch.stack(pg)
        conv = model.get_submodule(CONV[arch])
        params = [conv.weight] + ([conv.bias] if conv.bias is not None else [])
        cg = []
        for n in range(len(y)):
            grads = torch.autograd.grad(F.cross_entropy(model(x[n:n + 1]), lab[n:n + 1]), params)
            cg.append(torch.cat([g.flatten() for g in grads]))
        res[f"{arch}_cg_{label}"] = torch.stack(cg)
    res[f"{arch}_features"] = feats
    res[f"{arch}_logits"] = z.detach()
    for k, v in res.items():
        np.save(f"{out}/{k}.npy", v.detach().numpy().astype(np.float32))
print("ok")
