"""Interval regression of 0-10 answers: the latent score behind rounded, bounded answers.

An answer k on a 0..10 scale says the respondent's latent score lay in [k - 0.5, k + 0.5)
(below 0.5 for 0, at or above 9.5 for 10). A straight line through the answers is pulled
towards the middle by the bounds; the grouped-normal (interval) regression of Stewart,
"On least squares estimation when the dependent variable is grouped", Review of Economic
Studies 50(4), 1983 (Stata's ``intreg``) estimates the latent line itself. Fitted by maximum
likelihood with statsmodels' ``GenericLikelihoodModel`` on answer counts, not on raw rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as st
from statsmodels.base.model import GenericLikelihoodModel

from cxm.errors import Invalid


class _GroupedNormal(GenericLikelihoodModel):
    def __init__(
        self, endog: np.ndarray, exog: np.ndarray, weights: np.ndarray, lo: float, hi: float
    ) -> None:
        super().__init__(endog, exog, extra_params_names=["log_sigma"])
        self.w = weights
        self.lo, self.hi = lo, hi

    def loglikeobs(self, params: np.ndarray) -> np.ndarray:
        beta, sigma = params[:-1], np.exp(params[-1])
        mu = self.exog @ beta
        k = self.endog
        upper = np.where(k >= self.hi, np.inf, k + 0.5)
        lower = np.where(k <= self.lo, -np.inf, k - 0.5)
        p = st.norm.cdf((upper - mu) / sigma) - st.norm.cdf((lower - mu) / sigma)
        return np.asarray(self.w * np.log(np.clip(p, 1e-300, None)))


@dataclass(frozen=True)
class Slope:
    """The latent score's change per unit of ``x``, with its interval."""

    slope: float
    low: float
    high: float
    intercept: float
    sigma: float
    p_value: float
    answers: int


def grouped_slope(
    cells: pd.DataFrame,
    x: str,
    score: str = "score",
    count: str = "answers",
    cluster: str | None = "team_key",
    lo: int = 0,
    hi: int = 10,
    confidence: float = 0.95,
) -> Slope:
    """Interval regression of ``score`` (integers ``lo``..``hi``) on ``x`` over ``cells``
    (one row per x, score and group, with the number of answers ``count``).

    Standard errors are clustered by ``cluster`` (answers of one team are not independent
    evidence about the slope). Invalid with fewer than two distinct ``x`` values.
    """
    data = cells.dropna(subset=[x, score])
    data = data[data[count] > 0]
    if data[x].nunique() < 2:
        raise Invalid("the slope needs groups with at least two different values of " + x)
    X = np.column_stack([np.ones(len(data)), data[x].to_numpy(float)])
    y = data[score].to_numpy(float)
    w = data[count].to_numpy(float)
    mean = float(np.average(y, weights=w))
    sd = float(np.sqrt(np.average((y - mean) ** 2, weights=w))) or 1.0
    model = _GroupedNormal(y, X, w, lo, hi)
    kwargs: dict[str, object] = {}
    if cluster is not None and data[cluster].nunique() >= 3:
        kwargs = {"cov_type": "cluster", "cov_kwds": {"groups": pd.factorize(data[cluster])[0]}}
    fit = model.fit(
        start_params=np.array([mean, 0.0, np.log(sd)]),
        method="bfgs",
        maxiter=500,
        disp=False,
        **kwargs,
    )
    low, high = fit.conf_int(alpha=1 - confidence)[1]
    return Slope(
        float(fit.params[1]),
        float(low),
        float(high),
        float(fit.params[0]),
        float(np.exp(fit.params[2])),
        float(fit.pvalues[1]),
        int(w.sum()),
    )
