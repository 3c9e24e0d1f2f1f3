"""Statistics of the pilot evaluation: t-based helpers, the clustered Poisson rate-ratio model and Kaplan-Meier.

Rate-ratio model (:func:`rate_ratio_did`). Each row is a reporter-week while working; the outcome is
core output in benchmark minutes (case mix weighted). A Poisson pseudo-likelihood (log-linear) model
with a fixed effect per reporter, a fixed effect per week and a participant x pilot term gives
log(rate ratio) = the coefficient of that term: the participants' change in output relative to the
comparison reporters' change over the same weeks. Poisson pseudo-likelihood needs no Poisson
assumption (only the mean model; it is the usual estimator of multiplicative effects with zeros allowed),
and the standard error is clustered by reporter (statsmodels' CR1: the sandwich with the G/(G-1) x
(N-1)/(N-K) correction), so a reporter's weeks are not taken as independent. With few treated
clusters (6 participants) CR1 alone is too optimistic, so the t reference distribution uses
min(participants, comparison) - 1 degrees of freedom: the lower bound of the Welch-Satterthwaite df
of a comparison of two groups of reporters (conservative; see tests/test_evaluation_power.py for
the error rates this gives on simulated pilots).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats
from threadpoolctl import threadpool_limits

try:  # statsmodels is a dependency; import lazily-tolerant so that a broken install names itself
    import statsmodels.api as sm
except ImportError as exc:  # pragma: no cover - the dependency is declared in pyproject.toml
    raise ImportError("sim.evaluation needs statsmodels (pip install statsmodels)") from exc


def paired_difference(differences: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """One-sample t on paired differences: n, estimate (mean), sd, se, df, t, p (two-sided), ci_low, ci_high."""
    d = np.asarray(differences, dtype=float)
    n = len(d)
    out = {"n": n, "estimate": d.mean() if n else np.nan, "sd": np.nan, "se": np.nan, "df": np.nan,
           "t": np.nan, "p_value": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    if n >= 2:
        sd = d.std(ddof=1)
        out.update(sd=sd, se=sd / np.sqrt(n), df=n - 1)
        out.update(t_inference(out["estimate"], out["se"], n - 1, confidence))
    return out


def welch_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """mean(a) - mean(b) with a Welch standard error and Welch-Satterthwaite df (two-sided p, CI)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out = {"n": len(a), "n_comparison": len(b), "estimate": np.nan, "se": np.nan, "df": np.nan, "t": np.nan,
           "p_value": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    if len(a) and len(b):
        out["estimate"] = a.mean() - b.mean()
    if len(a) >= 2 and len(b) >= 2:
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        se = np.sqrt(va + vb)
        denominator = va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)
        df = (va + vb) ** 2 / denominator if denominator > 0 else np.nan
        out.update(se=se, df=df)
        out.update(t_inference(out["estimate"], se, df, confidence))
    return out


def t_inference(estimate: float, se: float, df: float, confidence: float) -> dict[str, float]:
    if not se > 0 or not df > 0:  # no spread: a t statistic is undefined
        return {"t": np.nan, "p_value": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    t = estimate / se
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    return {"t": t, "p_value": 2 * stats.t.sf(abs(t), df), "ci_low": estimate - half, "ci_high": estimate + half}


# ------------------------------------------------------------------------------------- rate-ratio model
FIT_METHOD = "irls"
# the design matrices are small (hundreds of rows x ~60 columns): threaded BLAS only adds contention,
# ~7x slower on a busy 2-core machine, so each fit runs single-threaded


def rate_ratio_did(output: np.ndarray, reporter: np.ndarray, week: np.ndarray, treated: np.ndarray,
                   during: np.ndarray, *, week_effects: bool = True, df: float | None = None) -> dict[str, float]:
    """log rate ratio of the participant x pilot term of a Poisson model with reporter and week fixed effects.

    output: outcome per reporter-week row (>= 0); reporter, week: integer codes per row; treated: per row,
    the reporter is a participant; during: per row, the week is in the pilot. With every row treated
    (participants only, a pre-post comparison) the week effects are left out (they would absorb the
    pilot term) and the term is simply "during". Returns log_rr, se (CR1, clustered by reporter), df
    (given, else min(treated, untreated reporters) - 1, or treated - 1 for pre-post), n_reporters,
    n_rows; NaN where the model cannot be fitted (no variation, a reporter with no output at all).
    """
    output = np.asarray(output, dtype=float)
    reporter, week = np.asarray(reporter), np.asarray(week)
    treated, during = np.asarray(treated, dtype=bool), np.asarray(during, dtype=bool)
    nan = {"log_rr": np.nan, "se": np.nan, "df": np.nan, "n_reporters": 0, "n_rows": len(output)}
    r_codes, r_index = np.unique(reporter, return_inverse=True)
    n_t = len(np.unique(reporter[treated]))
    n_c = len(np.unique(reporter[~treated]))
    prepost = n_c == 0
    term = during if prepost else treated & during
    nan["n_reporters"] = len(r_codes)
    if n_t < 2 or not term.any() or term.all() or (not prepost and n_c == 0):
        return nan
    totals = np.bincount(r_index, weights=output)
    if (totals <= 0).any():  # a reporter with no output in any week: its fixed effect is -infinity
        keep = totals[r_index] > 0
        if not term[keep].any():
            return nan
        return rate_ratio_did(output[keep], reporter[keep], week[keep], treated[keep], during[keep],
                              week_effects=week_effects, df=df)
    columns = [np.eye(len(r_codes))[r_index]]
    if week_effects and not prepost:
        w_codes, w_index = np.unique(week, return_inverse=True)
        if len(w_codes) > 1:
            columns.append(np.eye(len(w_codes))[w_index][:, 1:])
    columns.append(term[:, None].astype(float))
    X = np.hstack(columns)
    scale = output.mean() if output.mean() > 0 else 1.0
    with np.errstate(all="ignore"), threadpool_limits(1):
        try:
            fit = sm.GLM(output / scale, X, family=sm.families.Poisson()).fit(
                method=FIT_METHOD, cov_type="cluster",
                cov_kwds={"groups": r_index, "use_correction": True, "df_correction": True})
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError):
            return nan
    b, se = float(fit.params[-1]), float(fit.bse[-1])
    if df is None:
        df = (n_t - 1) if prepost else (min(n_t, n_c) - 1)
    return {"log_rr": b, "se": se if np.isfinite(se) and se > 0 else np.nan, "df": float(df) if df >= 1 else np.nan,
            "n_reporters": len(r_codes), "n_rows": len(output)}


def noninferiority(log_rr: float, se: float, df: float, margin: float = -0.10, confidence: float = 0.90) -> dict:
    """Rate ratio, its CI and the verdict against a margin (a relative change, e.g. -0.10 = a 10% drop).

    non-inferior: the lower CI bound is above 1 + margin (a drop as large as the margin is ruled out);
    inferior: the upper CI bound is below 1 (output fell) and a drop as large as the margin is not ruled
    out; inconclusive otherwise. With a 90% CI each claim is a one-sided test at 5%.
    p_noninferiority: one-sided p of H0 "ratio <= 1 + margin".
    """
    out = {"rate_ratio": np.exp(log_rr), "ci_low": np.nan, "ci_high": np.nan, "p_noninferiority": np.nan,
           "verdict": "inconclusive", "margin": margin, "confidence": confidence}
    if not (np.isfinite(log_rr) and se > 0 and df > 0):
        out["verdict"] = "not estimable"
        return out
    q = stats.t.ppf(0.5 + confidence / 2, df)
    low, high = np.exp(log_rr - q * se), np.exp(log_rr + q * se)
    bound = np.log1p(margin)
    out.update(ci_low=low, ci_high=high, p_noninferiority=float(stats.t.sf((log_rr - bound) / se, df)))
    if low > 1 + margin:
        out["verdict"] = "non-inferior"
    elif high < 1:
        out["verdict"] = "inferior"
    return out


def sensitivity(se: float, df: float, margin: float = -0.10, confidence: float = 0.90, power: float = 0.80) -> dict:
    """What a design with this standard error can show: the smallest true drop called inferior with `power`
    (minimum detectable effect, relative) and the chance of a non-inferior verdict if nothing changed."""
    if not (se > 0 and df > 0):
        return {"mde": np.nan, "power_noninferior_if_no_change": np.nan}
    q = stats.t.ppf(0.5 + confidence / 2, df)
    mde = 1 - np.exp(-(q + stats.t.ppf(power, df)) * se)
    chance = stats.t.sf(q - (-np.log1p(margin)) / se, df)
    return {"mde": float(mde), "power_noninferior_if_no_change": float(chance)}


# ---------------------------------------------------------------------------------------- Kaplan-Meier
def kaplan_meier_quantiles(time: np.ndarray, event: np.ndarray, quantiles: Sequence[float] = (0.5, 0.9)) -> list[float]:
    """Quantiles of the time to event from right-censored data (Kaplan-Meier; NaN where never reached).

    time: follow-up (time to the event, or to censoring); event: True where the event (a report) was seen.
    The q-quantile is the first event time t with 1 - S(t) >= q (S the product-limit survival).
    """
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=bool)
    if not len(time):
        return [np.nan for _ in quantiles]
    order = np.lexsort((~event, time))  # at tied times, events before censorings (the usual convention)
    time, event = time[order], event[order]
    at_risk = len(time) - np.arange(len(time))
    factor = np.where(event, 1 - 1 / at_risk, 1.0)
    survival = np.cumprod(factor)
    out = []
    for q in quantiles:
        hit = np.flatnonzero(event & (1 - survival >= q - 1e-12))
        out.append(float(time[hit[0]]) if hit.size else np.nan)
    return out
