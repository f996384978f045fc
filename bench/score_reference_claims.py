"""Score the reference MrVI's exports (bench/reference_claims.py) with our benchmark metrics.

Purpose
-------
Three paper claims fail on our semi-synthetic benchmark: MrVI's subset-A LFCs correlate less
with the DESeq2 pseudobulk than miloDE's, the Ward tree of subset A's sample distances misses
the planted top split, and ``u`` mixes the samples less than PCA. This script computes the same
quantities for the reference MrVI (scvi-tools 1.4.2, JAX) trained on the same file, with our
package's metric functions, so that an implementation problem can be told from a property of
the claim or of the data. With ``--ours`` it recomputes our MrVI's numbers the same way from a
workflow results folder (read only), for a side-by-side table.

Quantities
----------
* DE: Pearson r (:func:`mrvi_repro.metrics.lfc_pearson`) of the subset-A LFCs against the
  DESeq2 LFCs of ``covariate_1_G1`` (``baselines/deseq2.tsv``; its tested level must be
  ``True``, the level whose indicator is the reference's design column), and the slope of the
  least-squares fit of the method's LFC on the DESeq2 LFC.
* Tree: :func:`mrvi_repro.metrics.tree_benchmark` on the per-Leiden-cluster distance matrices
  (Ward, as the paper): ``rf_distance``, ``top_split``, ``cophenetic_r`` in subset A and
  ``cophenetic_r_other``; then the same with average linkage.
* Integration: ``scib_metrics.silhouette_label`` (labels ``leiden``) and
  ``scib_metrics.silhouette_batch`` (labels ``leiden``, groups ``sample_assignment``) of the
  posterior means of ``u`` (all cells, rescaled as in our workflow), and ``silhouette_batch``
  with the sample labels permuted within each Leiden cluster (``numpy`` generator, seed 0,
  clusters in sorted order): the value a perfectly mixed embedding of the same cells would get.

Usage
-----
::

    .venv/bin/python bench/score_reference_claims.py --workdir /tmp/reference_claims \\
        --h5ad results/semisynthetic/data/preprocessed.h5ad \\
        --deseq2 results/semisynthetic/baselines/deseq2.tsv \\
        --ours results/semisynthetic --out /tmp/reference_claims/scores.json
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

LOG = logging.getLogger("score_reference_claims")
DE_COVARIATE = "covariate_1_G1"


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
    p.add_argument("--workdir", required=True, help="output folder of reference_claims.py")
    p.add_argument("--h5ad", required=True, help="the semi-synthetic AnnData (copied first)")
    p.add_argument("--deseq2", required=True, help="baselines/deseq2.tsv of the same data")
    p.add_argument("--out", required=True, help="path of the JSON to write")
    p.add_argument(
        "--ours",
        default=None,
        help="workflow results folder of the same data (analysis/de.nc, "
        "analysis/sample_distances.nc, model/mrvi_latent.h5ad, baselines/milode.nc): "
        "recompute our numbers the same way",
    )
    p.add_argument("--labels-key", default="leiden")
    p.add_argument("--sample-key", default="sample_assignment")
    p.add_argument("--seed", type=int, default=0, help="seed of the within-cluster permutation")
    return p.parse_args(argv)


def read_h5ad_copy(path: str | Path, tmp: Path) -> Any:
    """Copy an ``.h5ad`` to ``tmp`` and read the copy into memory.

    Parameters
    ----------
    path
        The file.
    tmp
        Temporary folder.

    Returns
    -------
    anndata.AnnData
        The data.
    """
    import anndata as ad

    local = tmp / f"{len(list(tmp.iterdir()))}_{Path(path).name}"
    shutil.copy(path, local)
    return ad.read_h5ad(local)


def de_scores(lfc: pd.Series, reference: pd.Series) -> dict[str, float]:
    """Pearson r and least-squares slope of ``lfc`` on ``reference`` over common finite genes.

    Parameters
    ----------
    lfc
        Method LFC per gene.
    reference
        DESeq2 LFC per gene.

    Returns
    -------
    dict
        ``pearson_r``, ``slope`` (of lfc on reference), ``intercept``, ``n_genes``.
    """
    from mrvi_repro.metrics import lfc_pearson

    corr = lfc_pearson(lfc, reference)
    a, b = lfc.align(reference, join="inner")
    keep = np.isfinite(a.to_numpy()) & np.isfinite(b.to_numpy())
    slope, intercept = np.polyfit(b.to_numpy()[keep], a.to_numpy()[keep], 1)
    return {
        "pearson_r": corr.r,
        "slope": float(slope),
        "intercept": float(intercept),
        "n_genes": corr.n,
    }


def tree_scores(da: Any, truth: Any, name: str) -> dict[str, dict[str, float]]:
    """Tree-recovery records of one distance DataArray with Ward and with average linkage.

    Parameters
    ----------
    da
        DataArray (group, sample_x, sample_y).
    truth
        :class:`mrvi_repro.metrics.SemisyntheticTruth`.
    name
        Method name.

    Returns
    -------
    dict
        ``{"ward": {metric: value}, "average": {metric: value}, "ward_by_group": {group:
        {metric: value}}, "root_split": {"planted" | "ward" | "average": smaller side}}``; the
        per-group table includes ``intra_ratio`` and ``inter_ratio`` (mean distance over subset
        A's).
    """
    from mrvi_repro.metrics import linkage_from_distances, top_split, tree_benchmark

    order = truth.subject_order
    group_a = truth.subset_clusters["A"]

    def smaller_side(linkage: np.ndarray) -> list[str]:
        sides = sorted(top_split(linkage, order), key=lambda x: (len(x), sorted(x)))
        return sorted(sides[0])

    out: dict[str, Any] = {"root_split": {"planted": smaller_side(truth.subject_linkage)}}
    d_a = da.sel(group=group_a).sel(sample_x=order, sample_y=order).values
    for method in ("ward", "average"):
        table, records = tree_benchmark({name: da}, truth, method=method)
        out[method] = {
            m: float(v) for m, v in zip(records["metric"], records["value"], strict=True)
        }
        out["root_split"][method] = smaller_side(linkage_from_distances(d_a, method=method))
        if method == "ward":
            out["ward_by_group"] = {
                str(g): dict(zip(t["metric"], map(float, t["value"]), strict=True))
                for g, t in table.groupby("group")
            }
    return out


def permuted_within(groups: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """Permute ``labels`` among the cells of each group (groups in sorted order, one generator).

    Parameters
    ----------
    groups
        Group (cluster) of each cell.
    labels
        Label (sample) of each cell.
    seed
        Seed of the ``numpy`` generator.

    Returns
    -------
    np.ndarray
        The permuted labels.
    """
    rng = np.random.default_rng(seed)
    out = labels.copy()
    for g in sorted(np.unique(groups).tolist()):
        idx = np.flatnonzero(groups == g)
        out[idx] = labels[idx][rng.permutation(idx.size)]
    return out


def integration_scores(
    x: np.ndarray, labels: np.ndarray, samples: np.ndarray, seed: int, group: str
) -> dict[str, float]:
    """Silhouettes of an embedding: labels, samples, and samples permuted within labels.

    Parameters
    ----------
    x
        (cells, dims) embedding.
    labels
        Cell-type (Leiden) label per cell.
    samples
        Sample per cell.
    seed
        Seed of the within-label permutation.
    group
        A label (subset A's cluster) whose cells are also scored alone.

    Returns
    -------
    dict
        ``silhouette_label``, ``silhouette_batch``, ``silhouette_batch_permuted``, and
        ``silhouette_batch_A`` / ``silhouette_batch_A_permuted``: the same on ``group``'s cells.
    """
    import scib_metrics

    x = np.asarray(x, dtype=np.float32)
    permuted = permuted_within(labels, samples, seed)
    a = labels == group
    return {
        "silhouette_label": float(scib_metrics.silhouette_label(x, labels, rescale=True)),
        "silhouette_batch": float(scib_metrics.silhouette_batch(x, labels, samples, rescale=True)),
        "silhouette_batch_permuted": float(
            scib_metrics.silhouette_batch(x, labels, permuted, rescale=True)
        ),
        "silhouette_batch_A": float(
            scib_metrics.silhouette_batch(x[a], labels[a], samples[a], rescale=True)
        ),
        "silhouette_batch_A_permuted": float(
            scib_metrics.silhouette_batch(x[a], labels[a], permuted[a], rescale=True)
        ),
    }


def deseq2_reference(path: str | Path) -> pd.Series:
    """DESeq2 LFCs of ``covariate_1_G1`` (tested ``True`` vs ``False``), indexed by gene.

    Parameters
    ----------
    path
        ``baselines/deseq2.tsv``.

    Returns
    -------
    pd.Series
        log2 fold changes.
    """
    table = pd.read_csv(path, sep="\t")
    rows = table[table["covariate"] == DE_COVARIATE]
    tested = rows["tested"].astype(str).unique().tolist()
    if tested != ["True"]:
        raise ValueError(f"DESeq2 tested level(s) {tested}, expected ['True']")
    return rows.set_index("gene")["log2_fold_change"].astype(np.float64)


def score(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Compute every score of the reference (and of ours with ``--ours``).

    Parameters
    ----------
    args
        Parsed command line.
    tmp
        Temporary folder for copies of the inputs.

    Returns
    -------
    dict
        ``{"reference_mrvi": {...}, "ours": {...}, "extras": {...}}``.
    """
    import xarray as xr

    from mrvi_repro.metrics import SemisyntheticTruth

    work = Path(args.workdir)
    adata = read_h5ad_copy(args.h5ad, tmp)
    truth = SemisyntheticTruth.from_adata(adata)
    group_a = truth.subset_clusters["A"]
    labels = adata.obs[args.labels_key].astype(str).to_numpy()
    samples = adata.obs[args.sample_key].astype(str).to_numpy()
    reference = deseq2_reference(args.deseq2)
    info = json.loads((work / "info.json").read_text())

    out: dict[str, Any] = {"info": info}
    # reference MrVI
    ref_lfc = pd.read_csv(work / "de_lfc_A.csv").set_index("gene")["lfc"].astype(np.float64)
    ref_lfc.index = ref_lfc.index.astype(str)
    cells = (work / "cells.txt").read_text().split()
    if cells != list(map(str, adata.obs_names)):
        raise ValueError("u.npy is not in the order of the data's cells")
    u = np.load(work / "u.npy")
    with xr.open_dataset(work / "distances.nc") as ds:
        dist = ds["distance"].load()
    out["reference_mrvi"] = {
        "de": de_scores(ref_lfc, reference),
        "tree": tree_scores(dist, truth, "reference_mrvi"),
        "integration": integration_scores(u, labels, samples, args.seed, group_a),
    }
    extras: dict[str, Any] = {}
    if args.ours is not None:
        res = Path(args.ours)
        with xr.open_dataset(res / "analysis" / "de.nc") as ds:
            ours_lfc = (
                ds["lfc"].sel(covariate=f"{DE_COVARIATE}_True", group=group_a).to_series()
            ).astype(np.float64)
        with xr.open_dataset(res / "baselines" / "milode.nc") as ds:
            milode_lfc = (
                ds["lfc"].sel(covariate=DE_COVARIATE, group=group_a).to_series().astype(np.float64)
            )
        with xr.open_dataset(res / "analysis" / "sample_distances.nc") as ds:
            ours_dist = ds["distance"].load()
        latent = read_h5ad_copy(res / "model" / "mrvi_latent.h5ad", tmp)
        if not np.array_equal(latent.obs_names, adata.obs_names):
            raise ValueError("mrvi_latent.h5ad is not in the order of the data's cells")
        reps = read_h5ad_copy(res / "baselines" / "representations.h5ad", tmp)
        out["ours"] = {
            "de": de_scores(ours_lfc, reference),
            "tree": tree_scores(ours_dist, truth, "mrvi"),
            "integration": integration_scores(
                latent.obsm["X_mrvi_u"], labels, samples, args.seed, group_a
            ),
        }
        out["milode"] = {"de": de_scores(milode_lfc, reference)}
        if np.array_equal(reps.obs_names, adata.obs_names):
            out["pca"] = {
                "integration": integration_scores(
                    reps.obsm["X_pca"], labels, samples, args.seed, group_a
                )
            }
        r_ours = de_scores(ref_lfc, ours_lfc)
        extras["reference_vs_ours_lfc"] = r_ours
        a, b = (
            dist.sel(group=group_a).values,
            ours_dist.sel(group=group_a)
            .sel(sample_x=dist["sample_x"].values, sample_y=dist["sample_y"].values)
            .values,
        )
        iu = np.triu_indices_from(a, 1)
        extras["reference_vs_ours_subset_a_distances_pearson"] = float(
            np.corrcoef(a[iu], b[iu])[0, 1]
        )
    # scale of the reference's distances per group (mean off-diagonal)
    extras["reference_mean_distance_by_group"] = {
        str(g): float(dist.sel(group=g).values[np.triu_indices(dist.sizes["sample_x"], 1)].mean())
        for g in dist["group"].values
    }
    out["extras"] = extras
    return out


def print_table(s: dict[str, Any]) -> None:
    """Print the side-by-side table.

    Parameters
    ----------
    s
        Output of :func:`score`.
    """
    methods = [m for m in ("reference_mrvi", "ours", "milode", "pca") if m in s]
    rows: list[tuple[str, list[str]]] = []

    def get(m: str, *keys: str) -> str:
        v: Any = s.get(m, {})
        for k in keys:
            if not isinstance(v, dict) or k not in v:
                return "-"
            v = v[k]
        return f"{v:.3f}"

    for k in ("pearson_r", "slope"):
        rows.append((f"DE {k}", [get(m, "de", k) for m in methods]))
    for link in ("ward", "average"):
        for k in ("rf_distance", "top_split", "cophenetic_r", "cophenetic_r_other"):
            rows.append((f"tree {link} {k}", [get(m, "tree", link, k) for m in methods]))
    for k in (
        "silhouette_label",
        "silhouette_batch",
        "silhouette_batch_permuted",
        "silhouette_batch_A",
        "silhouette_batch_A_permuted",
    ):
        rows.append((k, [get(m, "integration", k) for m in methods]))
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  " + "  ".join(f"{m:>14}" for m in methods))
    for name, vals in rows:
        print(f"{name:{width}}  " + "  ".join(f"{v:>14}" for v in vals))
    for m in methods:
        tree = s[m].get("tree")
        if tree is None:
            continue
        print(f"{m} root splits (smaller side): {tree['root_split']}")
        for g, v in tree["ward_by_group"].items():
            print(f"  {m} group {g}: " + ", ".join(f"{k} {x:.3f}" for k, x in v.items()))
    for k, v in s["extras"].items():
        print(f"{k}: {v}")


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
    with tempfile.TemporaryDirectory(prefix="score_reference_claims_") as tmp:
        summary = score(args, Path(tmp))
    summary["command"] = " ".join(sys.argv)
    print_table(summary)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
