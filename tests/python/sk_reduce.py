"""numpy / scikit-learn 1.2 reference for tests/reduce/reduce_peer_test.cpp.

Usage: sk_reduce.py DIR — reads DIR/cases.json (a list of {n_components,
solver, whiten, seed, and optionally iterated_power and
power_iteration_normalizer}) and DIR/x_<i>.npy; prints JSON with, per case, the
PCA attributes and the transform of x, plus numpy RandomState draws.
"""
import json
import os
import sys

import numpy as np
from sklearn.decomposition import PCA

d = sys.argv[1]
cases = json.load(open(os.path.join(d, "cases.json")))
out = {"pca": []}
for i, c in enumerate(cases):
    x = np.load(os.path.join(d, f"x_{i}.npy"))
    p = PCA(n_components=c["n_components"], svd_solver=c["solver"], whiten=c["whiten"],
            random_state=c["seed"], iterated_power=c.get("iterated_power", "auto"),
            power_iteration_normalizer=c.get("power_iteration_normalizer", "auto")).fit(x)
    np.save(os.path.join(d, f"components_{i}.npy"), np.ascontiguousarray(p.components_, dtype=np.float64))
    np.save(os.path.join(d, f"scores_{i}.npy"), np.ascontiguousarray(p.transform(x), dtype=np.float64))
    out["pca"].append({
        "explained_variance": p.explained_variance_.tolist(),
        "explained_variance_ratio": p.explained_variance_ratio_.tolist(),
        "singular_values": p.singular_values_.tolist(),
        "noise_variance": float(p.noise_variance_),
        "mean": p.mean_.tolist(),
    })
# Optional DIR/range.json: a list of {size, n_iter, normalizer, seed} for
# sklearn's randomized_range_finder on DIR/range_a.npy; Q saved as
# DIR/range_q_<i>.npy.
if os.path.exists(os.path.join(d, "range.json")):
    from sklearn.utils.extmath import randomized_range_finder
    a = np.load(os.path.join(d, "range_a.npy"))
    for i, c in enumerate(json.load(open(os.path.join(d, "range.json")))):
        q = randomized_range_finder(a, size=c["size"], n_iter=c["n_iter"],
                                    power_iteration_normalizer=c["normalizer"], random_state=c["seed"])
        np.save(os.path.join(d, f"range_q_{i}.npy"), np.ascontiguousarray(q, dtype=np.float64))
rs = np.random.RandomState(12345)
out["rng"] = {
    "randint": [int(rs.randint(1000)) for _ in range(5)],
    "uniform": rs.uniform(size=4).tolist(),
    "permutation": rs.permutation(20).tolist(),
    "normal": rs.normal(size=(3, 3)).ravel().tolist(),
    "big": [int(rs.randint(5_000_000_000)) for _ in range(3)],
}
print(json.dumps(out))
