"""gradlens on torchvision models from Python, against PyTorch in the same
process, same threads, same input: Grad-CAM maps and extraction (Grad-CAM
weights + features) of resnet50 and mobilenet_v2 (seeded weights, 1000
classes) at 224 px.

usage: PYTHONPATH=build/python /usr/bin/python3 bench/torchscript_bench.py [N [BATCH [THREADS]]]
       (defaults 200 images, batches of 50, all cores: `import gradlens` sets
       torch's threads as the command does)

Sides, each timed after a one-batch warm-up:
  gradlens    gradlens.attribution(method="gradcam") / gradlens.extract on
              the scripted model (the graph captured at the layer)
  torch       the same batched ops in Python torch with forward hooks: one
              forward, one torch.autograd.grad to the layer per batch
  gradcam     pytorch-grad-cam's code path (forward hook + tensor hook,
              loss.backward(), numpy CAM, per-image scale_cam_image; resize
              by torch's bilinear interpolate as OpenCV is not installed)
Prints each time, the ratios (peer / gradlens) and the largest differences.
"""
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

import gradlens

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 50
if len(sys.argv) > 3:
    torch.set_num_threads(int(sys.argv[3]))
torch.manual_seed(0)
x = torch.randn(n, 3, 224, 224)


def timed(fn):
    fn(x[:batch])  # warm-up
    t0 = time.perf_counter()
    out = fn(x)
    return time.perf_counter() - t0, out


def display(cam, size):
    up = F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    f = up.flatten(1)
    lo, hi = f.min(1).values, f.max(1).values
    m = (up - lo[:, None, None]) / torch.where(hi > lo, hi - lo, torch.ones_like(hi))[:, None, None]
    return torch.where((hi > lo)[:, None, None], m, torch.zeros_like(m))


def scale_cam_image(cam, target_size):
    result = []
    for img in cam:
        img = img - np.min(img)
        img = img / (1e-7 + np.max(img))
        t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None, None]
        result.append(F.interpolate(t, size=target_size, mode="bilinear", align_corners=False)[0, 0].numpy())
    return np.float32(result)


for arch, layer_name in (("resnet50", "layer4"), ("mobilenet_v2", "features")):
    net = getattr(torchvision.models, arch)().eval()
    layer = net.get_submodule(layer_name)
    head = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
    model = gradlens.load_model(torch.jit.script(net), image_size=224)
    kept = {}
    layer.register_forward_hook(lambda m, i, o: kept.__setitem__("a", o))
    head.register_forward_hook(lambda m, i, o: kept.__setitem__("f", i[0]))

    def ours_maps(xs):
        return gradlens.attribution(model, xs, method="gradcam", layer=layer_name, batch_size=batch)["maps"]

    def ours_extract(xs):
        return gradlens.extract(model, xs, representations=["gradcam-weights", "features"], layer=layer_name,
                                batch_size=batch)

    def torch_weights(xb):
        z = net(xb)
        g, = torch.autograd.grad(z.gather(1, z.argmax(1, keepdim=True)).sum(), kept["a"])
        return g.mean((2, 3)), kept["a"].detach(), kept["f"].detach()

    def torch_maps(xs):
        out = []
        for s in range(0, len(xs), batch):
            w, a, _ = torch_weights(xs[s:s + batch])
            out.append(display(torch.relu((w[:, :, None, None] * a).sum(1)), xs.shape[2:]))
        return torch.cat(out)

    def torch_extract(xs):
        ws, fs = [], []
        for s in range(0, len(xs), batch):
            w, _, f = torch_weights(xs[s:s + batch])
            ws.append(w)
            fs.append(f)
        return {"gradcam-weights": torch.cat(ws), "features": torch.cat(fs)}

    def gradcam_maps(xs):
        out = []
        for s in range(0, len(xs), batch):
            grads = []
            xb = xs[s:s + batch].clone().requires_grad_(True)
            outputs = net(xb)
            kept["a"].register_hook(lambda g: grads.append(g.cpu().detach()))
            cats = np.argmax(outputs.cpu().data.numpy(), axis=-1)
            net.zero_grad()
            loss = sum(o[c] for o, c in zip(outputs, cats))
            loss.backward(retain_graph=True)
            a = kept["a"].cpu().detach().numpy()
            g = grads[0].numpy()
            cam = np.maximum((np.mean(g, axis=(2, 3))[:, :, None, None] * a).sum(axis=1), 0)
            scaled = scale_cam_image(cam, tuple(xb.shape[2:]))[:, None, :]
            out.append(torch.from_numpy(scale_cam_image(np.mean(np.maximum(scaled, 0), axis=1), tuple(xb.shape[2:]))))
        return torch.cat(out)

    t_ours, m_ours = timed(ours_maps)
    t_torch, m_torch = timed(torch_maps)
    t_gc, m_gc = timed(gradcam_maps)
    te_ours, e_ours = timed(ours_extract)
    te_torch, e_torch = timed(torch_extract)
    rel = lambda a, b: float((a - b).abs().max() / b.abs().max())
    print(f"{arch} {n} images {batch}/batch {torch.get_num_threads()} threads")
    print(f"  grad-cam maps: gradlens {t_ours:.2f} s, torch {t_torch:.2f} s ({t_torch / t_ours:.2f}x), "
          f"pytorch-grad-cam path {t_gc:.2f} s ({t_gc / t_ours:.2f}x); max |diff| {float((m_ours - m_torch).abs().max()):.2g}"
          f" / {float((m_ours - m_gc).abs().max()):.2g}")
    print(f"  extraction (weights + features): gradlens {te_ours:.2f} s, torch {te_torch:.2f} s "
          f"({te_torch / te_ours:.2f}x); rel diff {rel(e_ours['gradcam-weights'], e_torch['gradcam-weights']):.2g}, "
          f"{rel(e_ours['features'], e_torch['features']):.2g}")
