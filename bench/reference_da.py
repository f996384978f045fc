"""Differential abundance (DA) of the reference MrVI (scvi-tools 1.4.2, JAX) on semi-synthetic data.

Purpose
-------
Answers one question: on our semi-synthetic benchmark, does the reference MrVI's
``differential_abundance`` (the full-dimensional aggregated-posterior mixture, one
diagonal-Gaussian component per cell of a sample, evaluated at each cell's posterior
mean ``u``) reach a better DA precision-recall AUC than our re-implementation, or does it
show the same noise? It also recomputes, from the reference's own posterior ``u`` means and
scales, the paper-era estimator (a product over dimensions of per-dimension 1-D mixtures)
so the two estimators can be compared on one trained model.

It runs inside the reference virtual environment (Python 3.11, scvi-tools 1.4.2) and never
imports ``mrvi_repro``.

What it does
------------
1. Copies the input ``.h5ad`` (raw counts in ``X``) to a temporary folder and loads it.
2. ``scvi.external.MRVI.setup_anndata(adata, sample_key=..., batch_key=None,
   backend="jax")`` and ``scvi.external.MRVI(adata, n_latent=30, n_latent_u=5,
   u_prior_mixture=True)`` (mixture-of-Gaussians prior on ``u``; its 20 components and every
   other setting are the reference defaults). Trains with ``max_epochs``, ``batch_size``,
   early stopping on ``elbo_validation`` with the given patience, ``lr`` and
   ``n_epochs_kl_warmup`` passed through ``plan_kwargs``; the train / validation split is the
   reference default (``train_size=None`` -> 90 % / 10 %, shuffled with
   ``scvi.settings.seed``).
3. ``model.differential_abundance(sample_cov_keys=[covariate])`` with the default
   ``omit_original_sample=True``; the log ratio is ``log q_True(u) - log q_False(u)`` from the
   ``"{covariate}_log_probs"`` variable. PR-AUC (``sklearn`` ``precision_recall_curve`` +
   ``auc``) of ``|log ratio|`` against the truth column, per-subset mean / sd of the log
   ratio, median posterior ``u`` scale and sd of posterior ``u`` means per dimension.
4. From the posterior means / scales (``get_aggregated_posterior`` over all cells, i.e. the
   same encoder pass the reference uses), the per-dimension estimator
   ``log q_s(u) = sum_d log(mean_{j in s} N(u_d; mu_jd, sigma_jd))``, groups as equal-weight
   mixtures of their samples' densities with the cell's own sample left out, and its PR-AUC.
   As a consistency check the full-dimensional mixture is recomputed the same way and
   compared with the reference's ``log_probs``.
5. Prints a compact summary and writes it as JSON to ``--out``.

Usage
-----
::

    bench/.reference-venv/bin/python bench/reference_da.py \\
        --h5ad results/semisynthetic/data/preprocessed.h5ad --out /tmp/reference_da.json
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

LOG = logging.getLogger("reference_da")


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    """Add the reference MrVI's model and training options (the paper's settings as defaults)."""
    p.add_argument("--n-latent", type=int, default=30)
    p.add_argument("--n-latent-u", type=int, default=5)
    p.add_argument("--max-epochs", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--patience", type=int, default=30, help="early-stopping patience")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--kl-warmup", type=int, default=50, help="n_epochs_kl_warmup")
    p.add_argument("--seed", type=int, default=0, help="scvi.settings.seed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line.

    Parameters
    ----------
    argv
        Arguments (without the program name); ``None`` reads ``sys.argv``.

    Returns
    -------
    argparse.Namespace
        The parsed arguments.
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--h5ad", required=True, help="AnnData with raw counts in X (copied first)")
    p.add_argument("--out", required=True, help="path of the JSON summary to write")
    p.add_argument("--sample-key", default="sample_assignment")
    p.add_argument("--covariate", default="covariate_2_strong", help="binary sample covariate")
    p.add_argument("--truth-key", default="da_cell", help="bool obs column: truly DA cells")
    p.add_argument("--subset-key", default="subset", help="obs column for per-subset stats")
    add_training_arguments(p)
    p.add_argument("--da-batch-size", type=int, default=128, help="the reference's default")
    return p.parse_args(argv)


def pr_auc(truth: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve (trapezoidal, as ``sklearn.metrics.auc``).

    Parameters
    ----------
    truth
        Boolean labels (positives are DA cells).
    score
        Higher means more likely DA.

    Returns
    -------
    float
        The PR-AUC.
    """
    from sklearn.metrics import auc, precision_recall_curve

    precision, recall, _ = precision_recall_curve(truth.astype(int), score)
    return float(auc(recall, precision))


def subset_stats(values: np.ndarray, subsets: np.ndarray) -> dict[str, dict[str, float]]:
    """Mean and sd (``ddof=0``) of ``values`` per subset label.

    Parameters
    ----------
    values
        One value per cell.
    subsets
        One label per cell.

    Returns
    -------
    dict
        ``{label: {"mean": ..., "sd": ..., "n": ...}}``, labels sorted.
    """
    out = {}
    for label in sorted(np.unique(subsets).tolist()):
        v = values[subsets == label]
        out[str(label)] = {"mean": float(v.mean()), "sd": float(v.std()), "n": int(v.size)}
    return out


def per_sample_log_density(
    u: np.ndarray,
    loc: np.ndarray,
    scale: np.ndarray,
    sample_codes: np.ndarray,
    n_samples: int,
    per_dimension: bool,
    chunk: int = 500,
) -> np.ndarray:
    """Log density of each cell's ``u`` under each sample's aggregated posterior.

    Parameters
    ----------
    u
        ``(n_cells, d)`` points to evaluate.
    loc, scale
        ``(n_cells, d)`` posterior means and standard deviations (mixture components).
    sample_codes
        ``(n_cells,)`` integer sample of each component, in ``[0, n_samples)``.
    n_samples
        Number of samples.
    per_dimension
        ``False``: ``log mean_j prod_d N(u_d; mu_jd, sigma_jd)`` (full mixture);
        ``True``: ``sum_d log mean_j N(u_d; mu_jd, sigma_jd)`` (product of 1-D mixtures).
    chunk
        Number of query cells per block.

    Returns
    -------
    np.ndarray
        ``(n_cells, n_samples)`` log densities.
    """
    from scipy.special import logsumexp

    out = np.empty((u.shape[0], n_samples))
    for s in range(n_samples):
        m = loc[sample_codes == s]  # (n_s, d)
        sd = scale[sample_codes == s]
        n_s = m.shape[0]
        const = -np.log(sd) - 0.5 * np.log(2 * np.pi)  # (n_s, d)
        for start in range(0, u.shape[0], chunk):
            q = u[start : start + chunk, None, :]  # (c, 1, d)
            lp = const[None] - 0.5 * ((q - m[None]) / sd[None]) ** 2  # (c, n_s, d)
            if per_dimension:
                val = (logsumexp(lp, axis=1) - np.log(n_s)).sum(-1)
            else:
                val = logsumexp(lp.sum(-1), axis=1) - np.log(n_s)
            out[start : start + chunk, s] = val
    return out


def group_log_ratio(
    log_q: np.ndarray,
    sample_codes: np.ndarray,
    sample_is_true: np.ndarray,
    omit_own: bool = True,
) -> np.ndarray:
    """``log q_True - log q_False`` with groups as equal-weight mixtures of samples.

    Parameters
    ----------
    log_q
        ``(n_cells, n_samples)`` per-sample log densities.
    sample_codes
        ``(n_cells,)`` each cell's sample.
    sample_is_true
        ``(n_samples,)`` covariate value of each sample.
    omit_own
        Leave each cell's own sample out of its group's mixture.

    Returns
    -------
    np.ndarray
        ``(n_cells,)`` log ratios.
    """
    from scipy.special import logsumexp

    own = np.zeros_like(log_q, dtype=bool)
    if omit_own:
        own[np.arange(log_q.shape[0]), sample_codes] = True
    groups = []
    for value in (True, False):
        member = np.broadcast_to(sample_is_true == value, log_q.shape) & ~own
        lq = np.where(member, log_q, -np.inf)
        groups.append(logsumexp(lq, axis=1) - np.log(member.sum(1)))
    return groups[0] - groups[1]


def make_progress_logger(every: int = 10) -> Any:
    """Build a Lightning callback that logs the epoch and the validation negative ELBO (``elbo_validation``) every ``every`` epochs.

    Parameters
    ----------
    every
        Logging interval in epochs.

    Returns
    -------
    lightning.pytorch.Callback
        The callback.
    """
    from lightning.pytorch import Callback

    class ProgressLogger(Callback):
        """Log progress so a background run can be polled."""

        def __init__(self) -> None:
            super().__init__()
            self.t0 = time.perf_counter()

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            epoch = trainer.current_epoch + 1
            if epoch == 1 or epoch % every == 0:
                val = trainer.callback_metrics.get("elbo_validation")
                LOG.info(
                    "epoch %d, %.0f s, elbo_validation %s",
                    epoch,
                    time.perf_counter() - self.t0,
                    None if val is None else f"{float(val):.3f}",
                )

    return ProgressLogger()


def train_model(adata: Any, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Set up and train the reference JAX MrVI.

    Parameters
    ----------
    adata
        AnnData with raw counts in ``X``.
    args
        Parsed command line.

    Returns
    -------
    model, info
        The trained model and a dict with epochs trained, wall time and validation negative ELBO.
    """
    import scvi

    scvi.external.MRVI.setup_anndata(
        adata, sample_key=args.sample_key, batch_key=None, backend="jax"
    )
    model = scvi.external.MRVI(
        adata, n_latent=args.n_latent, n_latent_u=args.n_latent_u, u_prior_mixture=True
    )
    if type(model).__name__ != "JaxMRVI":
        raise RuntimeError(f"expected JaxMRVI, got {type(model).__name__}")
    LOG.info("model: %s, module %s", type(model).__name__, model.module.__class__.__name__)
    start = time.perf_counter()
    model.train(
        max_epochs=args.max_epochs,
        accelerator="cpu",
        devices=1,
        batch_size=args.batch_size,
        early_stopping=True,
        early_stopping_patience=args.patience,
        plan_kwargs={"lr": args.lr, "n_epochs_kl_warmup": args.kl_warmup},
        enable_progress_bar=False,
        callbacks=[make_progress_logger()],
    )
    seconds = time.perf_counter() - start
    hist = model.history["elbo_validation"]
    val = hist.iloc[:, 0].to_numpy(dtype=float)
    info = {
        "epochs_trained": len(val),
        "train_seconds": seconds,
        "val_neg_elbo_last": float(val[-1]),
        "val_neg_elbo_best": float(val.min()),
        "best_epoch": int(val.argmin()) + 1,
        "n_train": int(len(model.train_indices)),
        "n_validation": int(len(model.validation_indices)),
        "u_prior_mixture": bool(model.module.u_prior_mixture),
        "u_prior_mixture_k": int(model.module.u_prior_mixture_k),
    }
    LOG.info("trained %d epochs in %.1f s", info["epochs_trained"], seconds)
    return model, info


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Train, compute both DA estimators and collect the summary.

    Parameters
    ----------
    args
        Parsed command line.
    workdir
        Temporary folder holding the copied input and scvi-tools' logs.

    Returns
    -------
    dict
        The JSON summary.
    """
    import anndata as ad
    import scvi

    scvi.settings.seed = args.seed
    scvi.settings.logging_dir = str(workdir / "scvi_log")
    local = workdir / Path(args.h5ad).name
    shutil.copy(args.h5ad, local)
    adata = ad.read_h5ad(local)
    truth = adata.obs[args.truth_key].to_numpy().astype(bool)
    subsets = adata.obs[args.subset_key].astype(str).to_numpy()
    LOG.info("data: %d cells x %d genes", adata.n_obs, adata.n_vars)

    model, train_info = train_model(adata, args)

    # 1. The reference's own DA.
    start = time.perf_counter()
    ds = model.differential_abundance(
        adata, sample_cov_keys=[args.covariate], batch_size=args.da_batch_size
    )
    da_seconds = time.perf_counter() - start
    cov_lp = ds[f"{args.covariate}_log_probs"]
    values = [bool(v) for v in cov_lp[args.covariate].values]
    lp = cov_lp.values  # (n_cells, n_values)
    ref_lr = lp[:, values.index(True)] - lp[:, values.index(False)]
    if not np.array_equal(ds["cell_name"].values, adata.obs_names.to_numpy()):
        raise RuntimeError("DA output cells are not in adata order")

    # 2. Posterior u means / scales from the same encoder pass the reference's DA uses.
    ap = model.get_aggregated_posterior(adata)
    loc = np.asarray(ap.component_distribution.loc, dtype=np.float64)
    scale = np.asarray(
        np.diagonal(np.asarray(ap.component_distribution.scale_tril), axis1=-2, axis2=-1),
        dtype=np.float64,
    )
    us = model.get_latent_representation(adata, use_mean=True, batch_size=args.da_batch_size)
    mean_gap = float(np.abs(us - loc).max())

    sample_names = list(ds["sample"].values)
    codes = (
        adata.obs[args.sample_key].astype(str).map({str(s): i for i, s in enumerate(sample_names)})
    ).to_numpy(dtype=int)
    info = model.sample_info.set_index(args.sample_key)
    sample_is_true = np.array([bool(info.loc[s, args.covariate]) for s in sample_names])

    # 3. Consistency check: recompute the full mixture from loc / scale.
    full_lq = per_sample_log_density(loc, loc, scale, codes, len(sample_names), False)
    full_gap = float(np.abs(full_lq - ds["log_probs"].values).max())
    own_lr = group_log_ratio(full_lq, codes, sample_is_true)
    no_omit_lr = group_log_ratio(ds["log_probs"].values, codes, sample_is_true, omit_own=False)

    # 4. Paper-era estimator: product of per-dimension 1-D mixtures.
    pd_lq = per_sample_log_density(loc, loc, scale, codes, len(sample_names), True)
    pd_lr = group_log_ratio(pd_lq, codes, sample_is_true)

    summary = {
        "command": " ".join(sys.argv),
        "scvi_version": scvi.__version__,
        "settings": {
            "sample_key": args.sample_key,
            "covariate": args.covariate,
            "n_latent": args.n_latent,
            "n_latent_u": args.n_latent_u,
            "max_epochs": args.max_epochs,
            "batch_size": args.batch_size,
            "early_stopping_patience": args.patience,
            "lr": args.lr,
            "n_epochs_kl_warmup": args.kl_warmup,
            "seed": args.seed,
        },
        "training": train_info,
        "da_seconds": da_seconds,
        "reference_da": {
            "pr_auc": pr_auc(truth, np.abs(ref_lr)),
            "log_ratio_by_subset": subset_stats(ref_lr, subsets),
        },
        "per_dimension_da": {
            "pr_auc": pr_auc(truth, np.abs(pd_lr)),
            "log_ratio_by_subset": subset_stats(pd_lr, subsets),
        },
        "extras": {
            "reference_without_omitting_own_sample_pr_auc": pr_auc(truth, np.abs(no_omit_lr)),
            "recomputed_full_mixture_pr_auc": pr_auc(truth, np.abs(own_lr)),
            "max_abs_gap_recomputed_vs_reference_log_probs": full_gap,
            "max_abs_gap_recomputed_vs_reference_log_ratio": float(np.abs(own_lr - ref_lr).max()),
            "max_abs_gap_latent_mean_vs_aggregated_posterior_loc": mean_gap,
            "pearson_reference_vs_per_dimension_log_ratio": float(np.corrcoef(ref_lr, pd_lr)[0, 1]),
        },
        "posterior_u": {
            "median_scale_per_dim": np.median(scale, axis=0).tolist(),
            "sd_of_means_per_dim": loc.std(axis=0).tolist(),
        },
    }
    return summary


def print_summary(s: dict[str, Any]) -> None:
    """Print the compact human-readable summary.

    Parameters
    ----------
    s
        The JSON summary from :func:`run`.
    """
    t = s["training"]
    print(
        f"trained {t['epochs_trained']} epochs in {t['train_seconds']:.1f} s "
        f"(best validation -ELBO {t['val_neg_elbo_best']:.2f} at epoch {t['best_epoch']}, "
        f"last {t['val_neg_elbo_last']:.2f}; {t['n_train']} train / {t['n_validation']} val)"
    )
    for name in ("reference_da", "per_dimension_da"):
        r = s[name]
        subs = ", ".join(
            f"{k} {v['mean']:+.2f}±{v['sd']:.2f}" for k, v in r["log_ratio_by_subset"].items()
        )
        print(f"{name}: PR-AUC {r['pr_auc']:.3f}; log ratio by subset: {subs}")
    for k, v in s["extras"].items():
        print(f"  {k}: {v:.4g}")
    p = s["posterior_u"]
    print(
        "posterior u median scale per dim:", " ".join(f"{x:.3f}" for x in p["median_scale_per_dim"])
    )
    print(
        "posterior u sd of means per dim: ", " ".join(f"{x:.3f}" for x in p["sd_of_means_per_dim"])
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point.

    Parameters
    ----------
    argv
        Arguments (without the program name); ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        Process exit status.
    """
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="reference_da_") as tmp:
        summary = run(args, Path(tmp))
    print_summary(summary)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
