import math
import numpy as np
from typing import List, Optional


def log_returns(closes: List[float]) -> List[float]:
    return [math.log(b / a) for a, b in zip(closes, closes[1:])]
