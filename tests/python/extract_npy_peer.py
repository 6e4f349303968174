"""Peer side of tests/core/npy_peer_test.cpp (Debian's numpy).

usage: extract_npy_peer.py DIR
Loads the files gradlens wrote into DIR (ours_*.npy), checks them against the
arrays numpy builds itself, then writes numpy's own files (np_*.npy) for
gradlens to read back. Prints one line per check; exits non-zero on mismatch.
"""
import sys
import numpy as np

d = sys.argv[1]


def expected():
    return {
        "f4": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
        "f8": np.arange(10, dtype=np.float64).reshape(2, 5) / 3,
        "i8": np.arange(-3, 3, dtype=np.int64) * 1000000000007,
        "i4": np.arange(6, dtype=np.int32).reshape(1, 2, 3),
        "u1": np.arange(250, 256, dtype=np.uint8),
        "streamed": np.arange(7 * 3, dtype=np.float32).reshape(7, 3) * 0.5,
        "empty": np.zeros((0, 4), dtype=np.float32),
    }


ok = True
for name, want in expected().items():
    got = np.load(f"{d}/ours_{name}.npy")
    same = got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
    # Byte-identical to np.save of the same array.
    import io
    buf = io.BytesIO()
    np.save(buf, want)
    with open(f"{d}/ours_{name}.npy", "rb") as f:
        identical = f.read() == buf.getvalue()
    print(f"{name} load={'ok' if same else 'MISMATCH'} bytes={'identical' if identical else 'DIFFERENT'}")
    ok = ok and same and identical

np.save(f"{d}/np_f4.npy", (np.arange(20, dtype=np.float32).reshape(4, 5) - 3.25) / 9)
np.save(f"{d}/np_f8.npy", np.linspace(-1, 1, 7))
np.save(f"{d}/np_i8.npy", np.array([[1, -2], [3, 2**40]], dtype=np.int64))
np.save(f"{d}/np_i4.npy", np.array([7, -8, 9], dtype=np.int32))
np.save(f"{d}/np_u1.npy", np.array([[0, 255], [1, 128]], dtype=np.uint8))
np.save(f"{d}/np_scalar.npy", np.float64(2.5))
np.save(f"{d}/np_fortran.npy", np.asfortranarray(np.ones((3, 2), dtype=np.float32)))
np.save(f"{d}/np_bigendian.npy", np.ones(3, dtype=">f4"))
np.save(f"{d}/np_strings.npy", np.array(["a", "bc"]))
sys.exit(0 if ok else 1)
