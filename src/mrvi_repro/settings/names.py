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

#: Density estimates of the aggregated posteriors in MrVI's DA (``mrvi_repro.analysis``): the
#: full-dimensional mixture (the Methods', the default) and the paper-era product over latent
#: dimensions of 1-D mixtures (scvi-tools issue 3188), which produced the paper's Fig. 2e.
DA_ESTIMATORS = ("mixture", "per_dimension")

#: Method id of MrVI's DA with each estimator in the benchmark tables (``metrics/summary.tsv``).
DA_METHODS = {"mixture": "mrvi", "per_dimension": "mrvi_per_dimension"}


def da_variable(covariate: str, estimator: str = "mixture") -> str:
    """Name of a DA log ratio in ``analysis/da.nc``.

    ``log_ratio_<covariate>`` for the mixture (the layout Milo's DA file shares),
    ``log_ratio_<covariate>_<estimator>`` for another estimator of :data:`DA_ESTIMATORS`.
    """
    if estimator not in DA_ESTIMATORS:
        msg = f"unknown DA estimator {estimator!r}; choose one of {list(DA_ESTIMATORS)}"
        raise ValueError(msg)
    suffix = "" if estimator == "mixture" else f"_{estimator}"
    return f"log_ratio_{covariate}{suffix}"


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

#: Panels of the cohort figure (the paper's Fig. 3, Extended Data Fig. 1, Supp. Figs. 3-4) that
#: rule fig3_panels draws for an entry asking for ``fig3`` (``figures/fig3/<panel>.png``).
FIG3_PANELS = (
    "fig3a_cell_type",
    "fig3b_condition",
    "fig3c_sankey",
    "fig3d_distances",
    "supp3_distances_other",
    "ed1_onset",
    "fig3e_da",
    "supp4_da_by_label",
    "fig3f_modules",
)

#: Panels of the perturbation-screen figure (rule ``fig4_panels``: Fig. 4 a-f for A549, Extended
#: Data Figs. 3-4 for MCF-7 and K562, and Extended Data Fig. 2, the matrix of all samples).
FIG4_PANELS = (
    "fig4a_pathway",
    "fig4b_phase",
    "fig4c_distance_pca",
    "fig4d_metrics",
    "fig4e_top_distances",
    "fig4f_enrichment",
    "ed2_all_distances",
)

#: Panels of the disease-behaviour figure (rule ``fig5_panels``: Fig. 5 a-f and Extended Data
#: Figs. 6-7 for the IBD atlas; ``figures/fig5/<panel>.png``).
FIG5_PANELS = (
    "fig5a_coarse",
    "fig5a_collection",
    "fig5a_effect_sizes",
    "fig5b_labels",
    "fig5c_da",
    "fig5d_expression",
    "fig5e_lfc_violins",
    "fig5f_lfc_umaps",
    "ed6a_labels_behaviour",
    "ed6b_subset_behaviour",
    "ed6c_subset_effect",
    "ed6d_markers",
    "ed6e_more_lfcs",
    "ed7a_focus_expression",
    "ed7b_subcluster_markers",
    "ed7c_da_violins",
)
