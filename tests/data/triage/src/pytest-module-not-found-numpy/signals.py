import numpy as np


def crossover(fast, slow):
    """Indices where the fast series crosses above the slow one."""
    diff = np.sign(np.asarray(fast) - np.asarray(slow))
    return list(np.where((diff[1:] > 0) & (diff[:-1] <= 0))[0] + 1)
