"""Locality of MrVI's sample effects on the semi-synthetic benchmark (issue 16): an ablation.

The planted sample effects live in subset A only; elsewhere samples differ in abundance at most, so
MrVI's counterfactual distances there should be small and carry no hierarchy (paper, Fig. 2c). For
each variant (overrides of the dataset entry's ``mrvi.model`` section) and seed this script fits
MrVI on a preprocessed semi-synthetic file, computes the mean local sample distances per Leiden
cluster (as rule ``sample_distances`` does) and scores them with
:func:`mrvi_repro.metrics.tree_benchmark` (as rule ``tree_metrics`` does):

* subset-A tree recovery: ``rf_distance``, ``cophenetic_r``;
* locality, means over the other clusters: ``cophenetic_r_other`` (is subset A's hierarchy there?
  scale-free) and ``distance_ratio_other`` (how large are the distances there, over subset A's);
* two diagnostics of the mechanism, from the fitted u -> z block: ``group_frac_other``, the share
  of each cell's variation across the 32 counterfactual samples that lies in the span of the
  planted groups' indicators (centred, 7 of 31 dimensions: about 0.23 for variation unrelated to
  the groups, 1 for a copy of subset A's pattern), averaged over cells outside subset A; and
  ``attention_entropy_A`` / ``_other``, the normalised entropy of the u -> z attention weights
  (1 = uniform: the attention then reads the same features of every sample embedding whatever the
  cell state);
* ``val_elbo`` (best validation -ELBO per cell, lower is better; the split depends on the seed, so
  compare variants seed by seed), ``epochs`` and ``s_per_epoch`` (median).

With ``--reference-dirs`` it also scores work folders of ``bench/reference_claims.py --skip-de``
(the reference MrVI, scvi-tools 1.4.2, trained on the same file) with the same metrics.

Usage::

    python bench/locality.py --h5ad results/semisynthetic/data/preprocessed.h5ad \\
        --variants default,pytorch_init --seeds 0 1 2 --out locality.tsv \\
        [--reference-dirs /tmp/ref0 /tmp/ref1 /tmp/ref2]

Each fit writes one line to ``--out`` as soon as it is done (a rerun appends); the summary (mean
and range per variant) is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import xarray as xr
import yaml

REPO = Path(__file__).resolve().parents[1]

#: Named variants: overrides of the entry's ``mrvi.model`` section.
VARIANTS = {
    "default": {},
    "pytorch_init": {"init_scheme": "pytorch"},
    "sample_aware_encoder": {"encoder_sample_aware": True},
    "pytorch_init+sample_aware_encoder": {"init_scheme": "pytorch", "encoder_sample_aware": True},
}
COLUMNS = (
    "variant",
    "seed",
    "rf_distance",
    "cophenetic_r",
    "cophenetic_r_other",
    "distance_ratio_other",
    "group_frac_other",
    "attention_entropy_A",
    "attention_entropy_other",
    "val_elbo",
    "epochs",
    "s_per_epoch",
)


def group_fraction(states: np.ndarray, groups: np.ndarray) -> float:
    """Share of the cells' variation across counterfactual samples in the planted groups' span.

    ``states``: (cells, samples, d) counterfactual z; ``groups``: the planted group per sample.
    """
    labels = np.unique(groups)
    indicator = (groups[:, None] == labels[None]).astype(np.float64)
    basis, _ = np.linalg.qr((indicator - indicator.mean(0))[:, :-1])
    centred = states - states.mean(axis=1, keepdims=True)
    projected = np.einsum("sk,nsd->nkd", basis, centred)
    return float((projected**2).sum() / (centred**2).sum())


def attention_entropy(model, u: np.ndarray, n_codes: int = 8) -> float:
    """Mean normalised entropy of the u -> z attention weights over cells and some samples."""
    import jax
    import jax.numpy as jnp

    from mrvi_repro.model import MrVAE

    values = []
    codes = np.linspace(0, len(model.registry.samples) - 1, n_codes).astype(int)
    for code in codes:
        sample = jnp.full(len(u), code, dtype=jnp.int32)
        _, state = model.module.apply(
            {"params": model.params},
            jnp.asarray(u),
            sample,
            method=MrVAE.z_parts,
            capture_intermediates=True,
        )
        block = state["intermediates"]["qz"]["EmbeddingAttention_0"]["AttentionBlock_0"]
        attention = block["MultiHeadDotProductAttention_0"]
        q, k = attention["query"]["__call__"][0], attention["key"]["__call__"][0]
        logits = jnp.einsum("nqhd,nkhd->nhqk", q, k) / np.sqrt(q.shape[-1])
        w = jax.nn.softmax(logits, axis=-1)
        entropy = -(w * jnp.log(w + 1e-12)).sum(-1) / np.log(w.shape[-1])
        values.append(float(entropy.mean()))
    return float(np.mean(values))


def score(distances: xr.DataArray, truth) -> dict[str, float]:
    """Subset-A recovery and locality of per-cluster distance matrices."""
    from mrvi_repro.metrics import tree_benchmark

    _, records = tree_benchmark({"m": distances}, truth)
    return records.set_index("metric")["value"].drop("top_split").to_dict()


def fit_and_score(
    adata: ad.AnnData, entry: dict, variant: str, overrides: dict, seed: int, n_diag: int
) -> dict:
    """Fit one variant with one seed and score it."""
    from mrvi_repro.analysis import local_sample_distances
    from mrvi_repro.metrics import SemisyntheticTruth
    from mrvi_repro.model import MrVI, MrVIConfig, TrainConfig

    truth = SemisyntheticTruth.from_adata(adata)
    config = MrVIConfig.from_dict({**entry["mrvi"].get("model", {}), **overrides})
    train = TrainConfig.from_dict(entry["mrvi"].get("train", {}))
    model = MrVI.fit(adata, sample_key=entry["sample_key"], config=config, train=train, seed=seed)
    history = model.history
    row = {"variant": variant, "seed": seed}
    row.update(score(local_sample_distances(model, adata, groupby="leiden"), truth))
    subset = adata.obs["subset"].astype(str).to_numpy()
    rng = np.random.default_rng(0)
    pick = {
        s: rng.choice(np.where(subset == s)[0], min(n_diag, int((subset == s).sum())), False)
        for s in np.unique(subset)
    }
    others = np.concatenate([v for s, v in pick.items() if s != "A"])
    groups = (
        adata.obs.groupby(entry["sample_key"], observed=True)["covariate_1"]
        .first()
        .astype(str)
        .loc[list(model.registry.samples)]
        .to_numpy()
    )
    row["group_frac_other"] = group_fraction(model.counterfactual_z(adata[others]), groups)
    u = model.get_latent(adata)
    row["attention_entropy_A"] = attention_entropy(model, u[pick["A"]])
    row["attention_entropy_other"] = attention_entropy(model, u[others])
    row["val_elbo"] = float(history["val_elbo"].min())
    row["epochs"] = len(history)
    row["s_per_epoch"] = float(history["seconds"].iloc[1:].median())
    return row


def reference_rows(dirs: list[str], adata: ad.AnnData) -> list[dict]:
    """Score work folders of ``bench/reference_claims.py --skip-de``."""
    from mrvi_repro.metrics import SemisyntheticTruth

    truth = SemisyntheticTruth.from_adata(adata)
    rows = []
    for d in dirs:
        info = json.loads((Path(d) / "info.json").read_text())
        distances = xr.load_dataset(Path(d) / "distances.nc")["distance"]
        training = info["training"]
        row = {"variant": "reference (scvi-tools 1.4.2)", "seed": info["settings"]["seed"]}
        row.update(score(distances, truth))
        row.update(val_elbo=training["val_elbo_best"], epochs=training["epochs_trained"])
        rows.append(row)
    return rows


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean [min, max] per variant of every numeric column."""
    out = {}
    for variant, part in table.groupby("variant", sort=False):
        cells = {}
        for col in COLUMNS[2:]:
            v = pd.to_numeric(part[col], errors="coerce").dropna()
            cells[col] = f"{v.mean():.3f} [{v.min():.3f}, {v.max():.3f}]" if len(v) else ""
        cells["n"] = len(part)
        out[variant] = cells
    return pd.DataFrame(out).T


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--h5ad", required=True, help="preprocessed semi-synthetic AnnData")
    p.add_argument("--entry", default=str(REPO / "config" / "datasets" / "semisynthetic.yaml"))
    p.add_argument("--variants", default="default,pytorch_init", help="comma-separated names")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="an extra variant: a name and its mrvi.model overrides as JSON",
    )
    p.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2], help="none: score only")
    p.add_argument("--out", required=True, help="TSV, one row per fit (appended)")
    p.add_argument("--reference-dirs", nargs="*", default=[])
    p.add_argument("--n-diag", type=int, default=300, help="cells per subset for diagnostics")
    args = p.parse_args(argv)

    variants = {}
    for name in filter(None, args.variants.split(",")):
        if name not in VARIANTS:
            p.error(f"unknown variant {name!r}; known: {sorted(VARIANTS)}")
        variants[name] = VARIANTS[name]
    for spec in args.variant:
        name, _, overrides = spec.partition("=")
        variants[name] = json.loads(overrides)
    entry = yaml.safe_load(Path(args.entry).read_text())
    adata = ad.read_h5ad(args.h5ad)
    out = Path(args.out)
    rows = []
    for seed in args.seeds:
        for name, overrides in variants.items():
            start = time.perf_counter()
            row = fit_and_score(adata, entry, name, overrides, seed, args.n_diag)
            rows.append(row)
            frame = pd.DataFrame([row]).reindex(columns=list(COLUMNS))
            frame.to_csv(out, sep="\t", index=False, mode="a", header=not out.exists())
            print(json.dumps(row), f"({time.perf_counter() - start:.0f} s)", flush=True)
    rows += reference_rows(args.reference_dirs, adata)
    table = pd.read_csv(out, sep="\t") if out.exists() else pd.DataFrame(columns=list(COLUMNS))
    if args.reference_dirs:
        table = pd.concat([table, pd.DataFrame(rows[-len(args.reference_dirs) :])])
    print(summary(table).to_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
