"""Writes torchvision classifiers (seeded random weights, 64 px, 10 classes),
scripted and traced, and the reference values pytorch-grad-cam's code path
gives at the model's CAM layer (LAYER below): a forward hook keeps the
layer's output, the gradient of the predicted class's logit w.r.t. it gives
the Grad-CAM channel weights (spatial mean). The same at an inner layer
(INNER: one called inside an `if`, one through an overloaded forward), the
features before the last Linear, and every module's output shape
(NAME.shapes.txt, as torchinfo lists them: "name d1 d2 ..." for each module
whose output is a tensor).

Vision transformer layers give tokens [N, 1 + h*w, D]; they become maps
[N, D, h, w] as pytorch-grad-cam's reshape_transform makes them (class
token dropped), for the activations and the gradients alike.

Also two small nets whose forward() returns a tuple (logits, aux) and a dict
{"aux": ..., "logits": ...} (tuple_net.pt, dict_net.pt, their traced forms
and ref files), for --output-index / --output-key, twice_net.pt, whose
one convolution is called twice, and picky_net.pt, whose forward() raises
on batches of more than two images.

usage: torchvision_capture_reference.py OUT_DIR [NAME ...]
  NAME: an architecture of INNER or "outputs" (the tuple and dict nets);
  default: all of them
"""
import math
import sys

import torch
import torchvision

LAYER = {"vit": "encoder.layers.encoder_layer_1.ln_1"}  # pytorch-grad-cam's choice for ViTs: the last norm1
INNER = {
    "mobilenet_v2": "features.3.conv",  # in InvertedResidual's `if self.use_res_connect`
    "vgg11_bn": "features.10",
    "densenet121": "features.denseblock2.denselayer3",  # forward__0, an overload
    "efficientnet_b0": "features.2.1.block",  # in MBConv's `if self.use_res_connect`
    "convnext_tiny": "features.3.1.block",  # CNBlock: layer_scale * block(x) + stochastic depth
    "vit": "encoder.layers.encoder_layer_0",
}


def build(name):
    if name == "vit":
        # vit_b_16's class at a size for tests: 64 px, 8 px patches (an 8x8 grid).
        m = torchvision.models.VisionTransformer(
            image_size=64, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10)
        torch.nn.init.normal_(m.heads.head.weight, std=0.5)  # torchvision starts it at zero: all logits 0
        return m
    return getattr(torchvision.models, name)(num_classes=10)


def as_maps(t):
    """pytorch-grad-cam's reshape_transform for ViTs: [N, 1+h*w, D] -> [N, D, h, w]."""
    if t.dim() != 3:
        return t
    side = int(math.isqrt(t.size(1) - 1))
    return t[:, 1:, :].reshape(t.size(0), side, side, t.size(2)).transpose(2, 3).transpose(1, 2)


out = sys.argv[1]
wanted = sys.argv[2:] or list(INNER) + ["outputs"]
for name in INNER:
    if name not in wanted:
        continue
    torch.manual_seed(0)
    m = build(name).eval()
    x = torch.randn(3, 3, 64, 64)
    torch.jit.save(torch.jit.script(m), f"{out}/{name}.pt")
    torch.jit.save(torch.jit.trace(m, x, check_trace=False), f"{out}/{name}.traced.pt")
    head = [mod for mod in m.modules() if isinstance(mod, torch.nn.Linear)][-1]
    kept = {}
    shapes = {}
    hooks = [
        m.get_submodule(LAYER.get(name, "features")).register_forward_hook(
            lambda mod, i, o: kept.__setitem__("maps", o)),
        m.get_submodule(INNER[name]).register_forward_hook(lambda mod, i, o: kept.__setitem__("inner", o)),
        head.register_forward_hook(lambda mod, i, o: kept.__setitem__("feats", i[0])),
    ]
    for mod_name, mod in m.named_modules():
        if mod_name:
            hooks.append(mod.register_forward_hook(
                lambda mod, i, o, n=mod_name: shapes.__setitem__(n, list(o.shape))
                if isinstance(o, torch.Tensor) else None))
    z = m(x)
    for h in hooks:
        h.remove()
    cls = z.argmax(1)
    g, gi = torch.autograd.grad(z.gather(1, cls[:, None]).sum(), [kept["maps"], kept["inner"]])
    with open(f"{out}/{name}.shapes.txt", "w") as f:
        for mod_name, shape in shapes.items():
            f.write(mod_name + " " + " ".join(map(str, shape)) + "\n")

    class Ref(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.x = x
            self.logits = z.detach()
            self.maps = as_maps(kept["maps"].detach())
            self.weights = as_maps(g).mean((2, 3))
            self.inner_maps = as_maps(kept["inner"].detach())
            self.inner_weights = as_maps(gi).mean((2, 3))
            self.features = kept["feats"].detach()

    torch.jit.save(torch.jit.script(Ref()), f"{out}/{name}.ref.pt")


class Body(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(8, 10)
        self.aux = torch.nn.Linear(8, 4)


class TupleNet(Body):
    def forward(self, x):
        f = self.pool(torch.relu(self.conv(x))).flatten(1)
        return self.fc(f), self.aux(f)


class DictNet(Body):
    def forward(self, x):
        f = self.pool(torch.relu(self.conv(x))).flatten(1)
        return {"aux": self.aux(f), "logits": self.fc(f)}


class TwiceNet(torch.nn.Module):
    """One convolution applied twice (shared weights)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.fc = torch.nn.Linear(3, 10)

    def forward(self, x):
        return self.fc(self.conv(torch.relu(self.conv(x))).mean((2, 3)))


class PickyNet(TwiceNet):
    """Fails inside forward() on batches of more than two images."""

    def forward(self, x):
        if x.size(0) > 2:
            raise RuntimeError("batches of at most 2 images, please")
        return self.fc(self.conv(x).mean((2, 3)))


if "outputs" not in wanted:
    sys.exit(0)
torch.manual_seed(0)
torch.jit.save(torch.jit.script(TwiceNet().eval()), f"{out}/twice_net.pt")
torch.jit.save(torch.jit.script(PickyNet().eval()), f"{out}/picky_net.pt")
torch.manual_seed(0)
x = torch.randn(3, 3, 32, 32)
for name, net in [("tuple_net", TupleNet().eval()), ("dict_net", DictNet().eval())]:
    torch.jit.save(torch.jit.script(net), f"{out}/{name}.pt")
    torch.jit.save(torch.jit.trace(net, x, strict=False), f"{out}/{name}.traced.pt")
    kept = {}
    hook = net.conv.register_forward_hook(lambda mod, i, o: kept.__setitem__("maps", o))
    o = net(x)
    hook.remove()
    z = o[0] if isinstance(o, tuple) else o["logits"]
    cls = z.argmax(1)
    g = torch.autograd.grad(z.gather(1, cls[:, None]).sum(), kept["maps"])[0]

    class Ref(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.x = x
            self.logits = z.detach()
            self.weights = g.mean((2, 3))

    torch.jit.save(torch.jit.script(Ref()), f"{out}/{name}.ref.pt")
