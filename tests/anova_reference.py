"""An independent two-way ANOVA (treatments + blocks) for the statistics tests."""

import itertools

import numpy as np
from scipy import stats as scipy_stats


def two_way_anova(y: np.ndarray) -> tuple[float, int, np.ndarray]:
    """y: (treatments, blocks) → σ², residual df, (R, R) two-sided p of every pair.

    Computed differently from ``stn.report.grouping``: least squares with an intercept and
    dummy columns for treatments and blocks; σ² = residual sum of squares / (N − rank);
    a difference of two treatment effects tested through its contrast's variance
    σ² cᵀ(XᵀX)⁻¹c.
    """
    n_treatments, n_blocks = y.shape
    treatment, block = np.meshgrid(range(n_treatments), range(n_blocks), indexing="ij")
    treatment, block = treatment.ravel(), block.ravel()
    columns = [np.ones(y.size)]
    columns += [(treatment == k).astype(float) for k in range(1, n_treatments)]
    columns += [(block == k).astype(float) for k in range(1, n_blocks)]
    design = np.column_stack(columns)
    coefficients, residual_ss, rank, _ = np.linalg.lstsq(design, y.ravel(), rcond=None)
    df = y.size - rank
    variance = float(residual_ss[0]) / df
    covariance = variance * np.linalg.inv(design.T @ design)
    p = np.full((n_treatments, n_treatments), np.nan)
    for i, j in itertools.permutations(range(n_treatments), 2):
        contrast = np.zeros(design.shape[1])
        if i:
            contrast[i] += 1.0
        if j:
            contrast[j] -= 1.0
        t = contrast @ coefficients / np.sqrt(contrast @ covariance @ contrast)
        p[i, j] = 2 * scipy_stats.t.sf(abs(t), df)
    return variance, df, p
