import numpy as np


def annualised_volatility(closes, periods_per_year=252):
    closes = np.asarray(closes, dtype=float)
    log_returns = np.diff(np.log(closes))
    return float(log_returns.std(ddof=1) * np.sqrt(periods_per_year))
