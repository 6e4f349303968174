"""The one place where arguments become torch tensors (numpy arrays and lists
are accepted wherever a tensor is)."""
import torch


def tensor(x, dtype=None):
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
    return t.to(dtype) if dtype is not None else t


def matrix(x):
    """A float32/float64 matrix as given; other dtypes become float64."""
    t = tensor(x)
    return t if t.dtype in (torch.float32, torch.float64) else t.to(torch.float64)


def labels(a):
    return tensor(a, torch.int64)
