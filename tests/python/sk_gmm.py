"""scikit-learn 1.2 GaussianMixture reference for tests/cluster/gmm_peer_test.cpp.

Usage: sk_gmm.py DIR — reads DIR/cases.json (a list of {k, cov, init, seed,
n_init, max_iter, tol}), DIR/x_<i>.npy and, for init == "resp", DIR/resp_<i>.npy
(turned into weights_init / means_init / precisions_init exactly as sklearn
derives its own start from responsibilities). Prints a JSON list.
"""
import json
import os
import sys
import warnings

import numpy as np
from sklearn.mixture import GaussianMixture
from sklearn.mixture._gaussian_mixture import _estimate_gaussian_parameters

warnings.simplefilter("ignore")
d = sys.argv[1]
cases = json.load(open(os.path.join(d, "cases.json")))
out = []
for i, c in enumerate(cases):
    x = np.load(os.path.join(d, f"x_{i}.npy"))
    kw = dict(n_components=c["k"], covariance_type=c["cov"], random_state=c["seed"], n_init=c["n_init"],
              max_iter=c["max_iter"], tol=c["tol"], init_params="kmeans" if c["init"] == "resp" else c["init"])
    if c["init"] == "resp":
        resp = np.load(os.path.join(d, f"resp_{i}.npy"))
        w, m, cov = _estimate_gaussian_parameters(x, resp, 1e-6, c["cov"])
        w /= x.shape[0]
        prec = np.linalg.inv(cov) if c["cov"] in ("full", "tied") else 1.0 / cov
        kw.update(weights_init=w, means_init=m, precisions_init=prec)
    g = GaussianMixture(**kw).fit(x)
    np.save(os.path.join(d, f"proba_{i}.npy"), np.ascontiguousarray(g.predict_proba(x)))
    np.save(os.path.join(d, f"pred_{i}.npy"), g.predict(x).astype(np.int64))
    np.save(os.path.join(d, f"means_{i}.npy"), np.ascontiguousarray(g.means_))
    np.save(os.path.join(d, f"cov_{i}.npy"), np.ascontiguousarray(g.covariances_))
    out.append({"weights": g.weights_.tolist(), "lower_bound": float(g.lower_bound_), "n_iter": int(g.n_iter_),
                "converged": bool(g.converged_), "score": float(g.score(x)), "bic": float(g.bic(x)),
                "aic": float(g.aic(x))})
print(json.dumps(out))
