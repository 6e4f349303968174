#!/usr/bin/python3
"""Peer side of bench/evaluate_bench.cpp: `gradlens evaluate`'s protocol as a
Python user would run it with torch, scikit-learn, scipy and numpy.

usage: evaluate_bench.py DIR THREADS BATCH SEED

DIR holds x.npy [N,1,28,28] float32 (normalised), y.npy (int64) and the
weights of the gradlens model as DIR/params/<name>.npy (bench_resnet.py).
Stages, timed separately, in gradlens' order and with its options:
  extract   one forward + 2 backward passes per batch: Grad-CAM weights
            (pred, layer4), input gradients (pred), head parameter gradients
            (pred), penultimate features, layer4 activations, logits, probs;
            each saved as .npy (as gradlens writes its run directory)
  analyze   per representation: within-class cosine (Cos_Sim), PCA to
            min(50, D, N-1) (exact SVD), KMeans (k-means++, n_init 10), GMM
            (full covariance, KMeans init), each scored by ARI, NMI, AMI,
            silhouette and Hungarian accuracy; the 2-D PCA saved
  saliency  Grad-CAM maps (pred target, bilinear upsampling, min-max
            normalised, as pytorch-grad-cam) scored against each image's
            class-mean map with CC, KLD, SIM, NSS, AUC-Judd and AUC-Borji
            (100 splits, step 0.1): tests/python/saliency_reference.py, the
            numpy port of the MIT benchmark code that the tests check
            gradlens against
  errors    confusion matrix, per-class accuracy, self-confidence, normalised
            margin and the cosine-neighbourhood disagreement (k 10, head
            parameter gradients), the 5% flip validation (AUROC,
            precision@k), neighbours of each error in gradient and feature
            space, errors per KMeans cluster
There is no report stage: Debian's Python side has no plotting library
installed here (no matplotlib), so the figures, tables and HTML that
gradlens writes have no Python counterpart in this benchmark.
Prints "stage_<name> SECONDS" lines, "value_<key> VALUE" lines for the
cross-check against gradlens' numbers, and "peak_rss_mb MB".
"""
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import (adjusted_mutual_info_score, adjusted_rand_score, confusion_matrix,
                             normalized_mutual_info_score, roc_auc_score, silhouette_score)
from sklearn.mixture import GaussianMixture

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))
from bench_resnet import load_small_resnet18, shared_passes  # noqa: E402
import saliency_reference as ref  # noqa: E402
from sk_analyze import accuracy as hungarian_accuracy, cos_sim  # noqa: E402

REPS = ["gradcam-weights", "probs", "activations", "input-grad", "param-grad", "features", "logits"]


def extract(model, x, batch):
    return {k: v.numpy() for k, v in shared_passes(model, x, batch).items()}


def scores(y, labels, z):
    out = {"ari": adjusted_rand_score(y, labels), "nmi": normalized_mutual_info_score(y, labels),
           "ami": adjusted_mutual_info_score(y, labels), "accuracy": hungarian_accuracy(y, labels)}
    n_found = len(np.unique(labels))
    out["silhouette"] = silhouette_score(z, labels) if 2 <= n_found <= len(y) - 1 else float("nan")
    return out


def analyze(reps, y, k, seed, out_dir):
    results = {}
    for name in REPS:
        x = reps[name]
        r = {"cos_sim": cos_sim(x, y)}
        dims = min(50, x.shape[1], x.shape[0] - 1)
        z = PCA(n_components=dims, svd_solver="full").fit_transform(x.astype(np.float64))
        np.save(os.path.join(out_dir, name + ".pca2.npy"), z[:, :2])
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z)
        r["kmeans"] = scores(y, km.labels_, z)
        r["kmeans_labels"] = km.labels_
        try:
            gm = GaussianMixture(n_components=k, covariance_type="full", random_state=seed).fit(z)
            r["gmm"] = scores(y, gm.predict(z), z)
        except ValueError as e:  # ill-defined covariance: gradlens records the failure too
            r["gmm"] = {"error": str(e)}
        results[name] = r
    return results


def gradcam_maps(model, x, batch):
    maps = []
    for s in range(0, x.shape[0], batch):
        xb = x[s:s + batch]
        a = model.body(xb)
        z = model.fc(a.mean((2, 3)))
        g, = torch.autograd.grad(z.gather(1, z.argmax(1, keepdim=True)).sum(), [a])
        cam = F.relu((g.mean((2, 3))[:, :, None, None] * a).sum(1, keepdim=True))
        cam = F.interpolate(cam, size=xb.shape[2:], mode="bilinear", align_corners=False)[:, 0].detach()
        lo = cam.flatten(1).min(1).values[:, None, None]
        hi = cam.flatten(1).max(1).values[:, None, None]
        maps.append(torch.where(hi > lo, (cam - lo) / (hi - lo).clamp_min(1e-12), torch.zeros_like(cam)))
    return torch.cat(maps).numpy().astype(np.float64)


def saliency(model, x, y, batch, seed):
    maps = gradcam_maps(model, x, batch)
    rng = np.random.RandomState(seed)
    means = {c: maps[y == c].mean(0) for c in np.unique(y)}
    values = {m: [] for m in ("cc", "kld", "sim", "nss", "auc_judd", "auc_borji")}
    for i in range(len(maps)):
        p, g = maps[i], means[y[i]]
        span = g.max() - g.min()
        fix = ((g - g.min()) / span >= 0.5).astype(np.float64) if span > 0 else np.zeros_like(g)
        values["cc"].append(ref.cc(p, g))
        values["kld"].append(ref.kld(p, g))
        values["sim"].append(ref.sim(p, g))
        nf = int(fix.sum())
        if 0 < nf < fix.size:
            values["nss"].append(ref.nss(p, fix))
            values["auc_judd"].append(ref.auc_judd(p, fix))
            neg = rng.randint(0, fix.size, size=(100, nf))
            values["auc_borji"].append(ref.sampled_auc(p, fix, neg, 0.1))
    return {m: (float(np.mean(v)), float(np.std(v))) for m, v in values.items()}


def neighbours(x, k, queries=None):
    v = x.astype(np.float64)
    nrm = np.linalg.norm(v, axis=1, keepdims=True)
    v = np.divide(v, nrm, out=np.zeros_like(v), where=nrm > 0)
    q = v if queries is None else v[queries]
    s = q @ v.T
    rows = np.arange(len(q)) if queries is None else queries
    s[np.arange(len(q)), rows] = -np.inf
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(s, idx, 1)


def label_scores(probs, labels, emb, k):
    p_y = probs[np.arange(len(labels)), labels]
    other = probs.copy()
    other[np.arange(len(labels)), labels] = -np.inf
    idx, sim = neighbours(emb, k)
    w = np.clip(sim, 0, None)
    differ = (labels[idx] != labels[:, None]).astype(np.float64)
    wsum = w.sum(1)
    nb = np.where(wsum > 0, (w * differ).sum(1) / np.where(wsum > 0, wsum, 1), differ.mean(1))
    return {"self_confidence": 1 - p_y, "normalized_margin": -(p_y - other.max(1)), "neighbor_disagreement": nb}


def errors(reps, y, preds, k, seed, kmeans_labels):
    cm = confusion_matrix(y, preds, labels=np.arange(k))
    per_class = np.diag(cm) / cm.sum(1)
    probs = reps["probs"].astype(np.float64)
    emb = reps["param-grad"]
    label_scores(probs, y, emb, 10)  # on the given labels: gradlens computes (and reports) these too
    rng = np.random.RandomState(seed)
    n_flip = int(round(0.05 * len(y)))
    pos = rng.choice(len(y), n_flip, replace=False)
    noisy = y.copy()
    noisy[pos] = (y[pos] + rng.randint(1, k, n_flip)) % k
    flipped = noisy != y
    quality = {}
    for name, s in label_scores(probs, noisy, emb, 10).items():
        top = np.argsort(-s, kind="stable")
        quality[name] = (roc_auc_score(flipped, s), flipped[top[:n_flip]].mean(), flipped[top[:10]].mean())
    wrong = np.nonzero(preds != y)[0]
    if len(wrong):
        # the errors' neighbours, which gradlens reports; timed, not compared
        neighbours(emb, 5, wrong)
        neighbours(reps["features"], 5, wrong)
    per_cluster = {name: np.bincount(kmeans_labels[name][wrong], minlength=k)
                   for name in ("param-grad", "features")}
    return {"accuracy": 1 - len(wrong) / len(y), "per_class": per_class, "quality": quality,
            "per_cluster": per_cluster}


def main(argv):
    d, threads, batch, seed = argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    torch.set_num_threads(threads)
    model = load_small_resnet18(d)
    x = torch.from_numpy(np.load(os.path.join(d, "x.npy")))
    y = np.load(os.path.join(d, "y.npy")).astype(np.int64)
    k = int(y.max()) + 1
    out_dir = os.path.join(d, "py")
    os.makedirs(out_dir, exist_ok=True)
    times = {}
    t_all = time.perf_counter()

    t0 = time.perf_counter()
    reps = extract(model, x, batch)
    for name, v in reps.items():
        np.save(os.path.join(out_dir, name + ".npy"), v)
    preds = reps["logits"].argmax(1)
    times["extract"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    an = analyze(reps, y, k, seed, out_dir)
    times["analyze"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sal = saliency(model, x, y, batch, seed)
    times["saliency"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    er = errors(reps, y, preds, k, seed, {n: an[n]["kmeans_labels"] for n in an})
    times["errors"] = time.perf_counter() - t0
    times["total"] = time.perf_counter() - t_all

    for stage, s in times.items():
        print("stage_%s %.6f" % (stage, s))
    print("value_accuracy %.10g" % er["accuracy"])
    for name in REPS:
        print("value_cos_sim.%s %.10g" % (name, an[name]["cos_sim"]))
        for method in ("kmeans", "gmm"):
            for metric in ("ari", "nmi", "silhouette"):
                v = an[name][method].get(metric, float("nan"))
                print("value_%s.%s.%s %.10g" % (method, metric, name, v))
    for metric, (mean, _) in sal.items():
        print("value_saliency.%s %.10g" % (metric, mean))
    for name, (auc, _, _) in er["quality"].items():
        print("value_auroc.%s %.10g" % (name, auc))
    print("peak_rss_mb %.1f" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0))


if __name__ == "__main__":
    main(sys.argv)
