"""Adapter of rule fig2_panels: the workflow's outputs -> the panels of Fig. 2 (PNG)."""

import anndata as ad
import pandas as pd
import xarray as xr

from mrvi_repro._logging import setup_logging
from mrvi_repro.metrics import DA_COVARIATE, DE_COVARIATE, SemisyntheticTruth
from mrvi_repro.plotting import save_figure, semisynthetic_figure

setup_logging(snakemake.log[0])
inp = snakemake.input
adata = ad.read_h5ad(inp.h5ad, backed="r")
truth = SemisyntheticTruth.from_adata(adata)
panels = semisynthetic_figure(
    pd.read_csv(inp.umap, sep="\t"),
    adata.obs,
    xr.load_dataset(inp.da),
    xr.load_dataset(inp.de),
    xr.load_dataarray(inp.distances),
    pd.read_csv(inp.pr_curves, sep="\t"),
    pd.read_csv(inp.lfc_scatter, sep="\t"),
    subset_clusters=truth.subset_clusters,
    da_covariate=DA_COVARIATE,
    de_covariate=DE_COVARIATE,
    sample_groups=truth.subject_covariates["covariate_1"].to_dict(),
    prevalence=float(truth.da_cell.mean()),
)
for name, panel in panels.items():
    save_figure(panel.plot, snakemake.output[name], width=panel.width, height=panel.height)
