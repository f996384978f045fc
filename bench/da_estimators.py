"""DA estimators compared on a fitted semi-synthetic run: why MrVI's DA PR-AUC trails Milo's.

Takes a workflow results folder of a semi-synthetic dataset (``results/<dataset>``: data, the saved
MrVI, and optionally Milo's DA) and scores, for the strong-resampling covariate, the PR-AUC of
|log q_A(u_n) - log q_B(u_n)| against the planted DA cells for three density estimates of the
aggregated posteriors q_s (the cell's own sample left out of its group, as the workflow does):

* ``mixture``: the equal-weight mixture of the cells' posteriors q(u | x) evaluated at the
  posterior mean (paper Methods, the fixed reference; ``log_ratio_<covariate>`` of
  ``analysis/da.nc``);
* ``mixture_x<k>``: the same with every posterior scale multiplied by k (k = sqrt 2 is the
  cell's own posterior integrated out: E_q(u_n)[q_s(u_n)]); a kernel bandwidth study;
* ``per_dimension``: the product over latent dimensions of 1-D mixtures, which the paper-era
  package computed because of a bug (scvi-tools issue 3188) and which produced the paper's Fig. 2e
  (``log_ratio_<covariate>_per_dimension`` of ``analysis/da.nc`` with the entry's
  ``analysis.da.estimators``).

The densities are the package's own (``mrvi_repro.analysis.posterior_log_densities`` and
``group_log_ratio``, blocked on the device), so ``mixture`` and ``per_dimension`` are the numbers
the workflow writes. It also prints the mean and SD of the log ratio per subset (A, B, C, Other).

Usage: python bench/da_estimators.py results/semisynthetic [--scales 1.4142,2,3]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import anndata as ad
import numpy as np
import xarray as xr

from mrvi_repro.analysis import group_log_ratio, posterior_log_densities
from mrvi_repro.metrics import DA_COVARIATE, SemisyntheticTruth, pr_auc
from mrvi_repro.model import MrVI


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", type=Path, help="results/<dataset> of a semi-synthetic run")
    p.add_argument("--scales", default="1.4142,2,3", help="posterior-scale multipliers to try")
    p.add_argument("--out", type=Path, help="also write the numbers as JSON here")
    args = p.parse_args()

    adata = ad.read_h5ad(args.results / "data" / "preprocessed.h5ad")
    truth = SemisyntheticTruth.from_adata(adata)
    model = MrVI.load(args.results / "model" / "mrvi")
    mean, scale = model.posterior_u(adata)
    own = model.registry.codes(adata, "sample")
    samples = list(model.registry.samples)
    covariate = truth.subject_covariates.loc[samples, DA_COVARIATE].to_numpy()
    in_a = covariate == "True"

    variants = {"mixture": ("mixture", 1.0), "per_dimension": ("per_dimension", 1.0)}
    for k in (float(x) for x in args.scales.split(",") if x):
        variants[f"mixture_x{k:g}"] = ("mixture", k)
    results: dict[str, dict[str, float]] = {}
    for name, (estimator, k) in variants.items():
        logp = posterior_log_densities(mean, scale * k, own, len(samples), estimator=estimator)
        ratio = group_log_ratio(logp, own, in_a, ~in_a).astype(np.float64)
        row = {"pr_auc": pr_auc(np.abs(ratio), truth.da_cell)}
        for subset in ("A", "B", "C", "Other"):
            sel = truth.subset == subset
            row[f"{subset}_mean"] = float(ratio[sel].mean())
            row[f"{subset}_sd"] = float(ratio[sel].std())
        results[name] = row
    milo = args.results / "baselines" / "milo.nc"
    if milo.exists():
        ds = xr.load_dataset(milo)
        results["milo"] = {"pr_auc": pr_auc(np.abs(ds[f"log_ratio_{DA_COVARIATE}"]), truth.da_cell)}
    results["posterior_scale_median"] = {"value": float(np.median(scale))}
    for name, row in results.items():
        print(name, " ".join(f"{k} {v:.3f}" for k, v in row.items()))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
