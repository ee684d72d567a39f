try:
    import numpy as np
except ImportError:
    raise ImportError("Missing optional dependency 'numpy'. Use pip or conda to install numpy.") from None


def sma(prices, window):
    kernel = np.ones(window) / window
    return np.convolve(prices, kernel, mode="valid").tolist()
