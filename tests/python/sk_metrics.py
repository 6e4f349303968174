"""scikit-learn 1.2 reference values for tests/metrics/metrics_peer_test.cpp.

Usage: sk_metrics.py DIR N_CASES
Reads DIR/true_<i>.npy, DIR/pred_<i>.npy and, if present, DIR/x_<i>.npy, and
prints one JSON list with the metrics of every case.
"""
import json
import os
import sys

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import cluster as mc
from sklearn.metrics.cluster._expected_mutual_info_fast import expected_mutual_information


def case(d, i):
    t = np.load(os.path.join(d, f"true_{i}.npy"))
    p = np.load(os.path.join(d, f"pred_{i}.npy"))
    out = {
        "ari": mc.adjusted_rand_score(t, p),
        "pair": mc.pair_confusion_matrix(t, p).ravel().tolist(),
        "mi": mc.mutual_info_score(t, p),
        "emi": float(expected_mutual_information(mc.contingency_matrix(t, p, sparse=True).astype(float), len(t))),
        "entropy_true": float(mc.entropy(t)),
        "hcv": list(mc.homogeneity_completeness_v_measure(t, p)),
        "hcv_beta2": list(mc.homogeneity_completeness_v_measure(t, p, beta=2.0)),
        "contingency": mc.contingency_matrix(t, p).tolist(),
    }
    for m in ("arithmetic", "geometric", "min", "max"):
        out["nmi_" + m] = mc.normalized_mutual_info_score(t, p, average_method=m)
        out["ami_" + m] = mc.adjusted_mutual_info_score(t, p, average_method=m)
    c = mc.contingency_matrix(t, p)
    r, k = linear_sum_assignment(c, maximize=True)
    out["acc"] = float(c[r, k].sum()) / len(t)
    xp = os.path.join(d, f"x_{i}.npy")
    if os.path.exists(xp):
        x = np.load(xp)
        out["sil_euclid"] = float(mc.silhouette_score(x, p))
        out["sil_cosine"] = float(mc.silhouette_score(x, p, metric="cosine"))
        out["sil_samples"] = mc.silhouette_samples(x, p).tolist()
        out["sil_sampled"] = float(mc.silhouette_score(x, p, sample_size=len(t) // 2, random_state=7))
        out["ch"] = float(mc.calinski_harabasz_score(x, p))
        out["db"] = float(mc.davies_bouldin_score(x, p))
    return out


def main():
    d, n = sys.argv[1], int(sys.argv[2])
    print(json.dumps([case(d, i) for i in range(n)]))


if __name__ == "__main__":
    main()
