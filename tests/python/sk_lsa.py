"""scipy.optimize.linear_sum_assignment optimum for tests/metrics/matching_peer_test.cpp.

Usage: sk_lsa.py DIR N — reads DIR/cost_<i>.npy, prints a JSON list of
[min total, max total] per matrix.
"""
import json
import os
import sys

import numpy as np
from scipy.optimize import linear_sum_assignment

d, n = sys.argv[1], int(sys.argv[2])
res = []
for i in range(n):
    c = np.load(os.path.join(d, f"cost_{i}.npy"))
    r, k = linear_sum_assignment(c)
    r2, k2 = linear_sum_assignment(c, maximize=True)
    res.append([float(c[r, k].sum()), float(c[r2, k2].sum())])
print(json.dumps(res))
