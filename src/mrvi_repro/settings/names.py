"""Names shared by several floors and by the workflow: each vocabulary is written here once."""

from __future__ import annotations

#: ``obsm`` keys of MrVI's latents in ``mrvi_latent.h5ad``: latent name -> key.
LATENT_KEYS = {"u": "X_mrvi_u", "z": "X_mrvi_z"}

#: The baselines' cell representations (the ``{rep}`` of ``composition_{rep}.nc``) -> their
#: ``obsm`` key in ``representations.h5ad``.
REPRESENTATION_KEYS = {"pca": "X_pca", "scvi": "X_scvi"}

#: Linkage methods of the sample dendrograms (``scipy.cluster.hierarchy.linkage``; centroid and
#: median assume Euclidean inputs, which distance matrices between samples are).
LINKAGE_METHODS = ("ward", "average", "complete", "single", "weighted", "centroid", "median")

#: Panels of the paper's Fig. 2 (and Supp. Fig. 1d) that the semi-synthetic figure rule draws.
FIG2_PANELS = (
    "fig2b_subset",
    "fig2b_covariate_1",
    "fig2c_distances_A",
    "fig2c_distances_B",
    "fig2d_da",
    "fig2e_pr_curves",
    "fig2f_beta_norm",
    "fig2g_lfc_scatter",
    "supp1d_da_by_subset",
)
