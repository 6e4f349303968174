#!/usr/bin/env python3
"""The GPU benchmark of scripts/gpu-check.sh: gradlens against Python torch on
the same GPU, on the same images and model.

usage: gpu_bench.py GRADLENS OUT_DIR [--device cuda] [--images 1000]
                    [--size 224] [--batch 64]

Set-up (not timed): `gradlens make-shapes` writes 8 classes of --size px
RGB images, half of which are the test split both sides use; a torchvision ResNet50 (8 classes, seeded random weights: nothing
is downloaded) is saved as TorchScript for gradlens and as a state dict for
the Python side. Both take the images as x/255 normalised with ImageNet's
mean and std.

Timed, each as a separate process (wall clock, as a user waits: start-up,
CUDA initialisation, image decoding, model loading and writing included):
  extract   Grad-CAM channel weights (predicted class, layer4) and the
            penultimate features of --images images, in batches of --batch.
            gradlens: `gradlens extract`. Python: the eager model with a
            forward hook on layer4 (activations) and on fc (its input),
            torch.autograd.grad of the predicted logits' sum to the
            activations, weights = spatial mean of the gradients; images
            read with torchvision.io, the files gradlens' manifest lists, in
            its row order (so the rows are compared too); both save .npy.
  evaluate  `gradlens evaluate` on the same images (extraction of every
            representation, the analyses, the report). No Python
            counterpart is timed: the virtual environment has no
            scikit-learn; the CPU peers are in bench/evaluate_bench.py.
Writes OUT_DIR/gpu-bench.md (the table) and OUT_DIR/gpu-bench.json.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
CLASSES = 8


def peer_extract(args):
    """The Python side of `extract` (run in its own process)."""
    import numpy as np
    import torch
    import torchvision
    from torchvision.io import ImageReadMode, read_image

    device = torch.device(args.device)
    model = torchvision.models.resnet50(num_classes=CLASSES)
    model.load_state_dict(torch.load(args.state, map_location="cpu"))
    model = model.to(device).eval()
    store = {}
    model.layer4.register_forward_hook(lambda m, i, o: store.__setitem__("act", o))
    model.fc.register_forward_pre_hook(lambda m, i: store.__setitem__("feat", i[0]))
    with open(args.manifest) as f:
        files = json.load(f)["files"]  # gradlens' rows, in its order
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    weights, features = [], []
    for b in range(0, len(files), args.batch):
        x = torch.stack([read_image(f, ImageReadMode.RGB) for f in files[b:b + args.batch]])
        x = (x.to(device).float().div(255) - mean) / std
        logits = model(x)
        seed = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
        (grad,) = torch.autograd.grad(seed, store["act"])
        weights.append(grad.mean((2, 3)).detach().cpu())
        features.append(store["feat"].detach().cpu())
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "gradcam-weights.npy"), torch.cat(weights).numpy())
    np.save(os.path.join(args.out, "features.npy"), torch.cat(features).numpy())


def timed(cmd, log):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - t0
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + f"\n{r.stdout}\n[exit {r.returncode}, {seconds:.2f} s]\n")
    if r.returncode != 0:
        sys.exit(f"gpu_bench: failed (exit {r.returncode}): {' '.join(cmd)}\n{r.stdout[-2000:]}")
    return seconds


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--peer-extract":
        p = argparse.ArgumentParser()
        for a in ("--manifest", "--state", "--out", "--device"):
            p.add_argument(a, required=True)
        p.add_argument("--batch", type=int, required=True)
        peer_extract(p.parse_args(sys.argv[2:]))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("gradlens")
    p.add_argument("out")
    p.add_argument("--device", default="cuda")
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    import torch
    import torchvision

    os.makedirs(args.out, exist_ok=True)
    log = os.path.join(args.out, "gpu-bench.log")
    per_class = math.ceil(args.images / CLASSES)
    data = os.path.join(args.out, "shapes")
    if not os.path.isdir(data):  # half of it the test split (--test-fraction 0.5)
        timed([args.gradlens, "--quiet", "--seed", "0", "make-shapes", "--classes", str(CLASSES), "--per-class",
               str(2 * per_class), "--size", str(args.size), "--out", data], log)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(num_classes=CLASSES).eval()
    state, script = os.path.join(args.out, "resnet50.state"), os.path.join(args.out, "resnet50.pt")
    torch.save(model.state_dict(), state)
    torch.jit.save(torch.jit.script(model), script)

    data_flags = ["--data", data, "--channels", "3", "--image-size", str(args.size), "--input-range", "0-1",
                  "--mean", ",".join(map(str, MEAN)), "--std", ",".join(map(str, STD)), "--test-fraction", "0.5",
                  "--per-class", str(per_class)]
    g = [args.gradlens, "--quiet", "--device", args.device]
    rows = []
    peer_out, ours_out = os.path.join(args.out, "peer-extract"), os.path.join(args.out, "gradlens-extract")
    # gradlens first: its manifest names the files of its rows, which the
    # Python side then reads in that order.
    t_ours = timed(g + ["extract", "--model", script] + data_flags +
                   ["--representations", "gradcam-weights,features", "--batch-size", str(args.batch), "--overwrite",
                    "--out", ours_out], log)
    t_peer = timed([sys.executable, os.path.abspath(__file__), "--peer-extract", "--manifest",
                    os.path.join(ours_out, "manifest.json"), "--state", state, "--out", peer_out, "--device",
                    args.device, "--batch", str(args.batch)], log)
    import numpy as np
    agree = {}
    for name in ("gradcam-weights", "features"):
        a = np.load(os.path.join(ours_out, name + ".npy")).astype(np.float64)
        b = np.load(os.path.join(peer_out, name + ".npy")).astype(np.float64)
        agree[name] = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)) if a.shape == b.shape else None
    rows.append({"stage": "extract (Grad-CAM weights + features)", "gradlens_s": t_ours, "python_s": t_peer,
                 "ratio": t_peer / t_ours, "max_rel_diff": agree})
    shutil.rmtree(os.path.join(args.out, "gradlens-evaluate"), ignore_errors=True)
    t_eval = timed(g + ["evaluate", "--models", script] + data_flags +
                   ["--no-cache", "--out", os.path.join(args.out, "gradlens-evaluate")], log)
    rows.append({"stage": f"evaluate ({CLASSES * per_class} images, everything)", "gradlens_s": t_eval,
                 "python_s": None, "ratio": None, "max_rel_diff": None})

    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    meta = {"device": args.device, "gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda,
            "images": CLASSES * per_class, "size": args.size, "batch": args.batch, "date": time.strftime("%Y-%m-%d")}
    with open(os.path.join(args.out, "gpu-bench.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    lines = [f"ResNet50, {meta['images']} images at {args.size} px, batch {args.batch}, {gpu}, "
             f"torch {meta['torch']} (CUDA {meta['cuda']}), {meta['date']}", "",
             "| stage | gradlens s | Python torch s | ratio (Python / gradlens) | max rel. diff |",
             "|---|---|---|---|---|"]
    for r in rows:
        diff = ", ".join(f"{k} {v:.1e}" if v is not None else f"{k} shape differs"
                         for k, v in (r["max_rel_diff"] or {}).items()) or "-"
        lines.append(f"| {r['stage']} | {r['gradlens_s']:.2f} | "
                     f"{'-' if r['python_s'] is None else format(r['python_s'], '.2f')} | "
                     f"{'-' if r['ratio'] is None else format(r['ratio'], '.2f') + 'x'} | {diff} |")
    with open(os.path.join(args.out, "gpu-bench.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
