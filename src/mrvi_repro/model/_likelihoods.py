"""The negative-binomial likelihood of counts: its log density and its parameter-free term log x!.

:func:`nb_log_prob` (traceable, float32) is what the modules' reconstruction term is made of; it
leaves out -sum log(x!), which :func:`log_factorial` computes on the host in float64 for a full
log-likelihood (the ELBO). :func:`lgamma_positive` is the log Gamma both NB terms are built on.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import sparse
from scipy.special import gammaln

from ._data import _host_counts, _row_blocks

_HALF_LOG_2PI = 0.5 * float(np.log(2 * np.pi))
#: Arguments below this are shifted up by it before Stirling's series is used.
_SHIFT = 8


def _shifted(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Return a shifted up by _SHIFT where it is below _SHIFT, and where it was.

    Stirling's series is exact to float32 precision from _SHIFT on.
    """
    small = a < _SHIFT
    return jnp.where(small, a + _SHIFT, a), small


@jax.custom_jvp
def lgamma_positive(a: jax.Array) -> jax.Array:
    """Log Gamma(a) for a > 0, about 3x cheaper than XLA's general ``lgamma`` on CPU.

    Stirling's series at s = a (or a + 8 when a < 8, then minus log of a (a+1) ... (a+7)). Relative
    error below 4e-6 against ``jax.scipy.special.gammaln`` over [1e-4, 1e5] in float32; the
    derivative is the matching series for digamma.
    """
    s, small = _shifted(a)
    rising = a
    for k in range(1, _SHIFT):
        rising = rising * (a + k)
    r = 1.0 / s
    r2 = r * r
    series = r * (1 / 12 - r2 * (1 / 360 - r2 * (1 / 1260)))
    stirling = (s - 0.5) * jnp.log(s) - s + _HALF_LOG_2PI + series
    return stirling - jnp.where(small, jnp.log(rising), 0.0)


def digamma_positive(a: jax.Array) -> jax.Array:
    """Digamma(a) for a > 0 (the derivative of :func:`lgamma_positive`), same construction."""
    s, small = _shifted(a)
    # sum_k 1 / (a + k) as one fraction: numerator and denominator by the product rule
    num, den = jnp.ones_like(a), a
    for k in range(1, _SHIFT):
        num, den = num * (a + k) + den, den * (a + k)
    harmonic = num / den
    r = 1.0 / s
    r2 = r * r
    series = jnp.log(s) - 0.5 * r - r2 * (1 / 12 - r2 * (1 / 120 - r2 * (1 / 252)))
    return series - jnp.where(small, harmonic, 0.0)


@lgamma_positive.defjvp
def _lgamma_positive_jvp(
    primals: tuple[jax.Array], tangents: tuple[jax.Array]
) -> tuple[jax.Array, jax.Array]:
    (a,), (da,) = primals, tangents
    return lgamma_positive(a), digamma_positive(a) * da


def nb_log_prob(x: jax.Array, log_mean: jax.Array, log_theta: jax.Array) -> jax.Array:
    """Negative-binomial log density without the log(x!) term, summed over the last axis.

    Parameterised by the log mean and the log inverse dispersion theta. The omitted term,
    -sum log(x!), does not depend on any parameter; add it back for a full log-likelihood.
    log Gamma(x + theta) - log Gamma(theta) is exactly 0 where x = 0 (most entries of a count
    matrix), which also spares those entries the cancellation of two large terms.
    """
    theta = jnp.exp(log_theta)
    log_theta_mu = jnp.logaddexp(log_theta, log_mean)
    gamma_terms = jnp.where(x > 0, lgamma_positive(x + theta) - lgamma_positive(theta), 0.0)
    ll = gamma_terms + theta * (log_theta - log_theta_mu) + x * (log_mean - log_theta_mu)
    return ll.sum(-1)


def log_factorial(x: Any) -> np.ndarray:
    """Per-cell sum of log(x!) over genes, the NB log-likelihood's parameter-free term.

    Computed in blocks of rows: memory is bounded by a block, never a float64 copy of all counts.
    """
    x = _host_counts(x)
    out = np.empty(x.shape[0], dtype=np.float64)
    for start, block in _row_blocks(x):
        if sparse.issparse(block):
            terms = sparse.csr_matrix(
                (gammaln(block.data.astype(np.float64) + 1.0), block.indices, block.indptr),
                shape=block.shape,
            )
            out[start : start + block.shape[0]] = np.asarray(terms.sum(axis=1)).ravel()
        else:
            out[start : start + len(block)] = gammaln(
                np.asarray(block, dtype=np.float64) + 1.0
            ).sum(-1)
    return out


def _rows_log_factorial(x: Any, rows: np.ndarray) -> np.ndarray:
    """Return :func:`log_factorial` of the cells ``rows`` of ``x``, taking a block of them at a time."""
    return np.concatenate([log_factorial(x[block]) for _, block in _row_blocks(rows)])
