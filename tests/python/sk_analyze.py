"""scikit-learn 1.2 reference for tests/analysis/representation_analysis_peer_test.cpp:
the protocol of analysis::analyze_representation written with sklearn/numpy.

Usage: sk_analyze.py DIR — reads DIR/cases.json (a list of {k, pca_dims,
normalize, covariance, kmeans_n_init, gmm_n_init, reg_covar, seed,
silhouette_sample}), DIR/x_<i>.npy (float32 [N, D]) and DIR/labels_<i>.npy;
writes DIR/kmeans_<i>.npy, DIR/gmm_<i>.npy, DIR/pca2_<i>.npy and prints a
JSON list of the scores.
"""
import json
import os
import sys
import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import cluster as mc
from sklearn.mixture import GaussianMixture


def cos_sim(x, y):
    x = x.astype(np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    v = np.where(n > 0, x / np.where(n > 0, n, 1), 0)
    within = []
    for c in np.unique(y):
        m = v[y == c]
        if len(m) < 2:
            continue
        g = m @ m.T
        iu = np.triu_indices(len(m), 1)
        within.append(g[iu].mean())
    return float(np.mean(within))


def accuracy(t, p):
    c = mc.contingency_matrix(t, p)
    r, k = linear_sum_assignment(c, maximize=True)
    return float(c[r, k].sum()) / len(t)


def scores(z, t, p, c):
    out = {"ari": mc.adjusted_rand_score(t, p), "nmi": mc.normalized_mutual_info_score(t, p),
           "ami": mc.adjusted_mutual_info_score(t, p), "accuracy": accuracy(t, p)}
    kw = {}
    if c["silhouette_sample"] > 0:
        kw = dict(sample_size=c["silhouette_sample"], random_state=c["seed"])
    out["silhouette"] = float(mc.silhouette_score(z, p, **kw))
    return out


def main():
    warnings.simplefilter("ignore")
    d = sys.argv[1]
    cases = json.load(open(os.path.join(d, "cases.json")))
    res = []
    for i, c in enumerate(cases):
        x = np.load(os.path.join(d, f"x_{i}.npy"))
        y = np.load(os.path.join(d, f"labels_{i}.npy"))
        n, dd = x.shape
        xn = x
        if c["normalize"] == "l2":
            nr = np.linalg.norm(x, axis=1, keepdims=True)
            xn = x / np.where(nr > 0, nr, 1)
        dims = min(c["pca_dims"], dd, n - 1) if c["pca_dims"] > 0 else 0
        ncomp = max(min(10, n, dd), dims, min(2, n, dd))
        pca = PCA(n_components=ncomp, svd_solver="full").fit(xn)
        s = pca.transform(xn)
        z = s[:, :dims].astype(np.float64) if dims > 0 else xn.astype(np.float64)
        k = c["k"]
        km = KMeans(n_clusters=k, n_init=c["kmeans_n_init"], random_state=c["seed"], algorithm="lloyd").fit(z)
        gm = GaussianMixture(n_components=k, covariance_type=c["covariance"], n_init=c["gmm_n_init"],
                             reg_covar=c["reg_covar"], random_state=c["seed"]).fit(z)
        gl = gm.predict(z)
        np.save(os.path.join(d, f"kmeans_{i}.npy"), km.labels_.astype(np.int64))
        np.save(os.path.join(d, f"gmm_{i}.npy"), gl.astype(np.int64))
        np.save(os.path.join(d, f"pca2_{i}.npy"), np.ascontiguousarray(s[:, :2].astype(np.float32)))
        res.append({"cos_sim": cos_sim(x, y), "dims": dims,
                    "ratio": pca.explained_variance_ratio_[:min(10, n, dd)].astype(np.float64).tolist(),
                    "kmeans": dict(scores(z, y, km.labels_, c), inertia=float(km.inertia_)),
                    "gmm": dict(scores(z, y, gl, c), lower_bound=float(gm.lower_bound_))})
    print(json.dumps(res))


if __name__ == "__main__":
    main()
