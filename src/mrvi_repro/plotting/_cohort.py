"""The cohort figure: the paper's Fig. 3, Extended Data Fig. 1 and Supp. Figs. 3-4 for any cohort.

:func:`cohort_figure` draws the panels from a :class:`~mrvi_repro.metrics.CohortResults` (the
workflow's outputs for one entry, loaded), the 2-D embeddings of u and z (:func:`umap_table`)
and the entry's ``figures.fig3`` settings; :func:`module_gene_table` lists the genes of each DE
module (the table of Fig. 3f). Embeddings are UMAPs, not the paper's MDE (every title says so).
"""

from __future__ import annotations

import logging
import textwrap
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mrvi_repro.metrics import case_groups, cell_clusters, contrast_ends, onset_test
from mrvi_repro.settings.names import FIG3_PANELS

from ._figures import Panel, _message_panel, distance_heatmap, shared_distance_limits
from ._panels import (
    plot_alluvial,
    plot_distribution,
    plot_embedding,
    plot_group_values,
)

if TYPE_CHECKING:
    import xarray as xr

    from mrvi_repro.metrics import CohortResults
    from mrvi_repro.settings.figures import Fig3Spec

logger = logging.getLogger(__name__)

#: At most this many modules are drawn in panel f (those with the largest mean |LFC|).
MAX_MODULES = 6
#: At most this many other clusters' matrices are drawn in Supp. Fig. 3 (the largest).
MAX_OTHER_CLUSTERS = 4


def _drawn_cells(embedding: pd.DataFrame, max_points: int, seed: int) -> pd.DataFrame:
    """Return the embedding's rows of at most ``max_points`` cells (a seeded subsample).

    The same cells in every panel; ``attrs["note"]`` says how many were drawn.
    """
    cells = pd.Index(embedding["cell"].astype(str).unique())
    note = "UMAP"
    if len(cells) > max_points:
        keep = np.random.default_rng(seed).choice(len(cells), max_points, replace=False)
        chosen = set(cells[np.sort(keep)])
        embedding = embedding[embedding["cell"].astype(str).isin(chosen)]
        note = f"UMAP; {max_points:,} of {len(cells):,} cells drawn (seeded subsample)"
    out = embedding.copy()
    out["cell"] = out["cell"].astype(str)
    out.attrs["note"] = note
    return out


def _point_size(n_cells: float) -> float:
    """Size of the points of an embedding panel of ``n_cells`` cells: larger when few."""
    return float(np.clip(40.0 / np.sqrt(max(n_cells, 1.0)), 0.3, 1.6))


def _compartment_of_clusters(
    results: CohortResults, spec: Fig3Spec, clusters: pd.Series
) -> dict[str, str]:
    """Stratification cluster -> the compartment whose labels are most of its cells."""
    labels = results.obs[results.labels_key].astype(str).reindex(clusters.index)
    compartment = pd.Series(pd.NA, index=labels.index, dtype=object)
    for name, members in spec.compartments.items():
        compartment[labels.isin(members).to_numpy()] = name
    out = {}
    for cluster, inside in compartment.groupby(clusters.to_numpy()):
        counts = inside.dropna().value_counts()
        if len(counts) and counts.iloc[0] > 0.5 * len(inside):
            out[str(cluster)] = str(counts.index[0])
    return out


def _cluster_name(cluster: str, compartments: dict[str, str], *, first: bool = False) -> str:
    name = f"cluster {cluster}" + (f" ({compartments[cluster]})" if cluster in compartments else "")
    return name[0].upper() + name[1:] if first else name


def _sample_annotations(results: CohortResults, spec: Fig3Spec) -> dict[str, dict[str, object]]:
    return {c: results.samples[c].to_dict() for c in spec.annotations}


def _stored_linkage(stratification: xr.Dataset, cluster: str) -> np.ndarray | None:
    """Return the stratification's Ward linkage of a cluster, when its samples are in matrix order."""
    if "linkage" not in stratification:
        return None
    if list(stratification["sample"].values) != list(stratification["sample_x"].values):
        return None
    return stratification["linkage"].sel(cluster=cluster).values.astype(np.float64)


def module_gene_table(results: CohortResults) -> pd.DataFrame:
    """Return the genes of each DE module (the table of Fig. 3f).

    Returns
    -------
    One row per module: ``module``, ``n_genes``, ``mean_lfc`` (mean over its genes of their
    mean LFC, contrast ``a`` vs ``b`` of the comparison), ``higher_in`` (``a`` or ``b``) and
    ``genes`` (comma-separated, by decreasing |mean LFC|), modules by decreasing |mean_lfc|.
    """
    a, b = contrast_ends(results.de)
    rows = []
    for module, genes in results.modules.groupby(results.modules["module"].astype(str)):
        ordered = genes.reindex(genes["mean_lfc"].abs().sort_values(ascending=False).index)
        mean = float(genes["mean_lfc"].mean())
        rows.append(
            {
                "module": module,
                "n_genes": len(genes),
                "mean_lfc": mean,
                "higher_in": a if mean > 0 else b,
                "genes": ", ".join(ordered["gene"].astype(str)),
            }
        )
    table = pd.DataFrame(rows)
    return table.reindex(table["mean_lfc"].abs().sort_values(ascending=False).index).reset_index(
        drop=True
    )


def cohort_figure(
    results: CohortResults, embedding: pd.DataFrame, spec: Fig3Spec, *, seed: int = 0
) -> dict[str, Panel]:
    """Panels of the cohort figure (:data:`~mrvi_repro.settings.names.FIG3_PANELS`).

    Parameters
    ----------
    results
        The entry's outputs (:class:`~mrvi_repro.metrics.CohortResults`).
    embedding
        :func:`umap_table` of MrVI's u and z (panels ``"MrVI u"``, ``"MrVI z"``).
    spec
        The entry's ``figures.fig3`` settings.
    seed
        Seed of the subsample of drawn cells (above ``spec.max_points``) and of the jitter.

    Returns
    -------
    Panel name -> :class:`Panel`: a, b (u and z by cell type and by the condition), c (Sankey
    of labels -> stratification clusters, pairs under 1 % dropped), d (the donor-group
    cluster's matrix with dendrogram, donor groups and annotations), Supp. 3 (the other
    clusters' matrices, same colour scale), Extended Data 1 (onset of the two case groups, Mann-
    Whitney U), e (DA of each comparison on u), Supp. 4 (DA per label), f (module activities
    on u). A panel whose data are missing says why instead.
    """
    drawn = _drawn_cells(embedding, spec.max_points, seed)
    note = drawn.attrs["note"]
    samples_of_cells = results.obs[results.sample_key].astype(str)
    condition = samples_of_cells.map(results.samples[spec.condition].astype(str))
    cells = drawn.assign(
        cell_type=results.obs[results.labels_key].astype(str).reindex(drawn["cell"]).to_numpy(),
        condition=condition.reindex(drawn["cell"]).to_numpy(),
    )
    panels: dict[str, Panel] = {
        "fig3a_cell_type": Panel(
            plot_embedding(
                cells,
                "cell_type",
                title=f"MrVI u and z by cell type ({note})",
                legend_title="Cell type",
                point_size=_point_size(len(cells) / 2),
            ),
            8.0,
            3.8,
        ),
        "fig3b_condition": Panel(
            plot_embedding(
                cells,
                "condition",
                title=f"MrVI u and z by {spec.condition} ({note})",
                legend_title=spec.condition,
                point_size=_point_size(len(cells) / 2),
            ),
            8.0,
            3.8,
        ),
    }
    clusters = cell_clusters(results.stratification)
    compartments = _compartment_of_clusters(results, spec, clusters)
    flows = pd.DataFrame(
        {
            "label": results.obs[results.labels_key].astype(str).reindex(clusters.index).to_numpy(),
            "cluster": [_cluster_name(c, compartments) for c in clusters],
            "n": 1.0,
        }
    )
    label_order = [lb for members in spec.compartments.values() for lb in members]
    panels["fig3c_sankey"] = Panel(
        plot_alluvial(
            flows,
            "label",
            "cluster",
            left_order=label_order,
            title="Cell types -> clusters of cells by their sample distance matrices",
            left_title="Cell type",
            right_title="Cluster (Leiden)",
        ),
        7.0,
        5.0,
    )
    strat = results.stratification
    limits = shared_distance_limits(
        [strat["distance"].sel(cluster=c) for c in strat["cluster"].values]
    )
    groups = results.groups.astype(str).to_dict()
    annotations = _sample_annotations(results, spec)
    gc = results.group_cluster
    panels["fig3d_distances"] = Panel(
        distance_heatmap(
            strat["distance"].sel(cluster=gc),
            linkage=_stored_linkage(strat, gc),
            title=f"{_cluster_name(gc, compartments, first=True)}: mean sample distances; "
            f"donor groups {spec.sample_groups}",
            limits=limits,
            groups=groups,
            group_title=spec.sample_groups,
            annotations=annotations,
        ),
        9.0,
        7.0,
    )
    sizes = pd.Series(strat["n_cells"].values, index=strat["cluster"].values.astype(str))
    others = [c for c in sizes.sort_values(ascending=False).index if c != gc]
    shown = others[:MAX_OTHER_CLUSTERS]
    if shown:
        plots = [
            distance_heatmap(
                strat["distance"].sel(cluster=c),
                linkage=_stored_linkage(strat, c),
                title=f"{_cluster_name(c, compartments, first=True)} ({int(sizes[c]):,} cells)",
                limits=limits,
                groups=groups,
                group_title=spec.sample_groups,
                annotations=annotations,
            )
            for c in shown
        ]
        composed = plots[0] if len(plots) == 1 else plots[0] | plots[1]
        if len(plots) > 2:
            composed = composed / (plots[2] | plots[3] if len(plots) > 3 else plots[2])
        ncol = min(2, len(plots))
        nrow = (len(plots) + 1) // 2
        panels["supp3_distances_other"] = Panel(composed, 9.0 * ncol, 8.0 * nrow)
    else:
        panels["supp3_distances_other"] = Panel(
            _message_panel("Other clusters", "The stratification found one cluster only."), 6.0, 1.5
        )
    panels["ed1_onset"] = _onset_panel(results, spec, seed)
    panels.update(_da_panels(results, spec, drawn, note))
    panels["fig3f_modules"] = _module_panel(results, drawn, note)
    return {name: panels[name] for name in FIG3_PANELS}


def _onset_panel(results: CohortResults, spec: Fig3Spec, seed: int) -> Panel:
    pair = case_groups(results, spec)
    title = f"{spec.onset} of the two {spec.case}\ndonor groups ({spec.sample_groups})"
    if pair is None:
        return Panel(
            _message_panel(title, f"Fewer than two donor groups are mostly {spec.case}."), 6.0, 1.5
        )
    test = onset_test(results, spec)
    values = pd.to_numeric(results.samples[spec.onset], errors="coerce")
    table = pd.DataFrame(
        {"group": results.groups.astype(str), "value": values.reindex(results.groups.index)}
    )
    table = table[table["group"].isin(pair)]
    table["group"] = pd.Categorical(table["group"], categories=list(pair))
    subtitle = (
        f"Mann-Whitney U p = {test['pvalue']:.2g}\nmedians {test['median_b']:g} ({pair[0]}, "
        f"n = {int(test['n_b'])}) vs {test['median_a']:g} ({pair[1]}, n = {int(test['n_a'])})"
    )
    return Panel(
        plot_group_values(
            table,
            "group",
            "value",
            title=title,
            subtitle=subtitle,
            x_label="Donor group",
            y_label=spec.onset,
            seed=seed,
        ),
        4.8,
        4.2,
    )


def _delta_text(da: xr.Dataset) -> str:
    """Return the delta of a DA comparison's cluster test as text ("delta" when unknown)."""
    return f"{da.attrs['delta']:g}" if "delta" in da.attrs else "delta"


def _da_title(da: xr.Dataset, name: str) -> str:
    a, b = da.attrs.get("group_a", "a"), da.attrs.get("group_b", "b")
    return f"{name}: {da.attrs.get('covariate', '')} {a} vs {b}"


def _da_panels(
    results: CohortResults, spec: Fig3Spec, drawn: pd.DataFrame, note: str
) -> dict[str, Panel]:
    u = drawn[drawn["panel"] == "MrVI u"]
    tables, violins = [], []
    for name in spec.da:
        da = results.da[name]
        log_ratio = pd.Series(da["log_ratio"].values, index=da["cell"].values.astype(str))
        rows = u[u["cell"].isin(log_ratio.index)]
        tables.append(
            rows.assign(
                log_ratio=log_ratio.reindex(rows["cell"]).to_numpy(), comparison=_da_title(da, name)
            )
        )
        test = results.da_tests[name]
        called = test[test["significant"].astype(bool)]
        calls = ", ".join(f"{r.cluster} {r.direction}" for r in called.itertuples()) or "none"
        labels = results.obs[results.labels_key].astype(str).reindex(log_ratio.index)
        violins.append(
            plot_distribution(
                pd.DataFrame({"label": labels.to_numpy(), "log_ratio": log_ratio.to_numpy()}),
                "label",
                "log_ratio",
                title=f"{_da_title(da, name)}\n"
                + textwrap.fill(f"called (|difference| > {_delta_text(da)}): {calls}", 60),
                x_label="Cell type",
                y_label="DA log density ratio",
                limit_quantiles=(0.01, 0.99),
            )
        )
    table = pd.concat(tables, ignore_index=True)
    table["comparison"] = pd.Categorical(
        table["comparison"], categories=list(dict.fromkeys(table["comparison"]))
    )
    composed = violins[0]
    for v in violins[1:]:
        composed = composed | v
    return {
        "fig3e_da": Panel(
            plot_embedding(
                table,
                "log_ratio",
                facet="comparison",
                diverging=True,
                limit_quantile=0.98,
                title=f"MrVI DA on u (log q(a) - log q(b); {note})",
                legend_title="log density ratio",
                point_size=_point_size(len(table) / len(tables)),
            ),
            4.2 * len(tables) + 1.5,
            4.0,
        ),
        "supp4_da_by_label": Panel(composed, 5.0 * len(violins), 4.2),
    }


def _module_panel(results: CohortResults, drawn: pd.DataFrame, note: str) -> Panel:
    if "module_activity" not in results.de:
        return Panel(
            _message_panel("DE modules", "The DE comparison has no gene modules."), 6.0, 1.5
        )
    genes = module_gene_table(results)
    chosen = list(genes["module"].head(MAX_MODULES))
    a, b = contrast_ends(results.de)
    activity = results.de["module_activity"]
    u = drawn[drawn["panel"] == "MrVI u"]
    cells = activity["cell"].values.astype(str)
    rows = u[u["cell"].isin(set(cells))]
    tables = []
    for module in chosen:
        row = genes.set_index("module").loc[module]
        values = pd.Series(activity.sel(gene_module=module).values, index=cells)
        label = f"module {module} ({int(row['n_genes'])} genes): higher in {row['higher_in']}"
        tables.append(rows.assign(activity=values.reindex(rows["cell"]).to_numpy(), module=label))
    table = pd.concat(tables, ignore_index=True)
    table["module"] = pd.Categorical(
        table["module"], categories=list(dict.fromkeys(table["module"]))
    )
    more = len(genes) - len(chosen)
    title = f"MrVI DE modules, {a} vs {b}: mean LFC of each module's genes per cell ({note})"
    if more > 0:
        title += f"\n{len(chosen)} of {len(genes)} modules, those with the largest mean |LFC|"
    ncol = min(3, len(chosen))
    return Panel(
        plot_embedding(
            table,
            "activity",
            facet="module",
            diverging=True,
            limit_quantile=0.98,
            title=title,
            legend_title=f"mean LFC\n({a} vs {b})",
            point_size=_point_size(len(rows)),
        ),
        3.6 * ncol + 1.5,
        3.4 * ((len(chosen) + ncol - 1) // ncol) + 0.6,
    )
