#!/usr/bin/python3
"""numpy re-implementation of the saliency metrics of gradlens::saliency.

A literal port of the MIT Saliency Benchmark MATLAB code (cvzoya/saliency,
code_forMetrics: CC.m, KLdiv.m, similarity.m, NSS.m, AUC_Judd.m, AUC_Borji.m,
AUC_shuffled.m), plus the values gradlens documents where the reference
returns NaN (constant maps). The random negatives of AUC-Borji and shuffled
AUC are not drawn here: they are read from the C++ side, so that both
implementations score the same points.

Usage (run by tests/saliency/metrics_peer_test.cpp):
  saliency_reference.py DIR N H W N_SPLITS STEP
DIR holds raw little-endian float64 files pred.f64, gt.f64, fix.f64, other.f64
([N, H, W] each) and int64 files borji_neg_<i>.i64 / sauc_neg_<i>.i64
([N_SPLITS, k] per image). Prints one line per metric: name, then N values.
"""
import os
import sys

import numpy as np

EPS = 2.2204e-16


def is_constant(m):
    return m.max() == m.min()


def cc(p, g):
    if is_constant(p) or is_constant(g):
        return 0.0
    p = (p - p.mean()) / p.std(ddof=1)
    g = (g - g.mean()) / g.std(ddof=1)
    return float(np.corrcoef(g.ravel(), p.ravel())[0, 1])


def kld(p, g, eps=EPS):
    if p.any():
        p = p / p.sum()
    if g.any():
        g = g / g.sum()
    return float(np.sum(g * np.log(eps + g / (p + eps))))


def _sim_normalise(m):
    if not m.any():
        return m  # a zero map stays a zero map
    if is_constant(m):
        m = np.ones_like(m)  # gradlens: constant non-zero map -> uniform
    else:
        m = (m - m.min()) / (m.max() - m.min())
    return m / m.sum()


def sim(p, g):
    return float(np.minimum(_sim_normalise(p), _sim_normalise(g)).sum())


def nss(s, f):
    if is_constant(s):
        return 0.0
    z = (s - s.mean()) / s.std(ddof=1)  # MATLAB std: ddof = 1
    return float(z[f > 0].mean())


def auc_judd(s, f):
    if is_constant(s):
        return 0.5
    s = (s - s.min()) / (s.max() - s.min())
    S = s.ravel()
    F = f.ravel()
    Sth = S[F > 0]
    n_fix = len(Sth)
    n_pix = len(S)
    thresholds = np.sort(Sth)[::-1]
    tp = np.zeros(n_fix + 2)
    fp = np.zeros(n_fix + 2)
    tp[-1] = 1
    fp[-1] = 1
    for i in range(1, n_fix + 1):
        above = np.sum(S >= thresholds[i - 1])
        tp[i] = i / n_fix
        fp[i] = (above - i) / (n_pix - n_fix)
    return float(np.trapz(tp, fp))


def matlab_colon_from_zero(d, b):
    """MATLAB's 0:d:b as its colon operator builds it (Moler's colonop)."""
    tol = 2.0 * np.finfo(float).eps * abs(b)
    if d == np.floor(d):
        n = np.floor(b / d)
    else:
        n = np.round(b / d)  # b / d >= 0: numpy's half-even equals MATLAB's
        if n * d - b > tol:  # round only at exact .5, where n*d > b drops it
            n -= 1
    c = n * d
    if c - b > -tol:
        c = b
    n = int(n)
    v = np.zeros(n + 1)
    k = np.arange(0, n // 2 + 1)
    v[k] = k * d
    v[n - k] = c - k * d
    if n % 2 == 0:
        v[n // 2] = c / 2.0
    return v


def sampled_auc(s, f, negatives, step):
    """AUC_Borji.m / AUC_shuffled.m given the negatives of every split."""
    if is_constant(s):
        return 0.5
    s = (s - s.min()) / (s.max() - s.min())
    S = s.ravel()
    Sth = S[f.ravel() > 0]
    aucs = []
    for split in negatives:
        cur = S[split]
        thresholds = matlab_colon_from_zero(step, max(Sth.max(), cur.max()))[::-1]
        tp = np.zeros(len(thresholds) + 2)
        fp = np.zeros(len(thresholds) + 2)
        tp[-1] = 1
        fp[-1] = 1
        for i, t in enumerate(thresholds):
            tp[i + 1] = np.sum(Sth >= t) / len(Sth)
            fp[i + 1] = np.sum(cur >= t) / len(cur)
        aucs.append(np.trapz(tp, fp))
    return float(np.mean(aucs))


def check_borji_negatives(neg, f, n_splits):
    n_fix = int(np.sum(f > 0))
    assert neg.shape == (n_splits, n_fix), neg.shape
    assert neg.min() >= 0 and neg.max() < f.size


def check_shuffled_negatives(neg, f, other, n_splits):
    pool = set(np.flatnonzero(other.ravel() > 0).tolist())
    k = min(int(np.sum(f > 0)), len(pool))
    assert neg.shape == (n_splits, k), neg.shape
    for row in neg:
        assert len(set(row.tolist())) == k, "negatives repeat within a split"
        assert set(row.tolist()) <= pool, "a negative is not an other-image fixation"


def main(argv):
    directory = argv[1]
    n, h, w, n_splits = (int(a) for a in argv[2:6])
    step = float(argv[6])

    def load(name):
        return np.fromfile(os.path.join(directory, name), dtype="<f8").reshape(n, h, w)

    def load_neg(name):
        return np.fromfile(os.path.join(directory, name), dtype="<i8").reshape(n_splits, -1)

    pred, gt, fix, other = load("pred.f64"), load("gt.f64"), load("fix.f64"), load("other.f64")
    rows = {name: [] for name in ("cc", "kld", "sim", "nss", "auc_judd", "auc_borji",
                                  "auc_shuffled")}
    for i in range(n):
        rows["cc"].append(cc(pred[i], gt[i]))
        rows["kld"].append(kld(pred[i], gt[i]))
        rows["sim"].append(sim(pred[i], gt[i]))
        rows["nss"].append(nss(pred[i], fix[i]))
        rows["auc_judd"].append(auc_judd(pred[i], fix[i]))
        neg = load_neg("borji_neg_%d.i64" % i)
        check_borji_negatives(neg, fix[i], n_splits)
        rows["auc_borji"].append(sampled_auc(pred[i], fix[i], neg, step))
        neg = load_neg("sauc_neg_%d.i64" % i)
        check_shuffled_negatives(neg, fix[i], other[i], n_splits)
        rows["auc_shuffled"].append(sampled_auc(pred[i], fix[i], neg, step))
    for name, values in rows.items():
        print(name, " ".join("%.17g" % v for v in values))


if __name__ == "__main__":
    main(sys.argv)
