"""scikit-learn 1.2 KMeans reference for tests/cluster/kmeans_peer_test.cpp.

Usage: sk_kmeans.py DIR — reads DIR/cases.json (a list of {k, n_init, seed,
init, max_iter, tol}), DIR/x_<i>.npy and DIR/init_<i>.npy (init == "given");
writes DIR/labels_<i>.npy and prints a JSON list of {inertia, n_iter,
centers, pp_indices}.
"""
import json
import os
import sys
import warnings

import numpy as np
from sklearn.cluster import KMeans, kmeans_plusplus

d = sys.argv[1]
cases = json.load(open(os.path.join(d, "cases.json")))
out = []
warnings.simplefilter("ignore")
for i, c in enumerate(cases):
    x = np.load(os.path.join(d, f"x_{i}.npy"))
    init = c["init"]
    if init == "given":
        init = np.load(os.path.join(d, f"init_{i}.npy"))
    km = KMeans(n_clusters=c["k"], n_init=c["n_init"], random_state=c["seed"], init=init,
                max_iter=c["max_iter"], tol=c["tol"], algorithm="lloyd").fit(x)
    np.save(os.path.join(d, f"labels_{i}.npy"), km.labels_.astype(np.int64))
    _, pp = kmeans_plusplus(x, c["k"], random_state=c["seed"])
    out.append({"inertia": float(km.inertia_), "n_iter": int(km.n_iter_),
                "centers": km.cluster_centers_.astype(np.float64).tolist(), "pp_indices": pp.tolist()})
print(json.dumps(out))
