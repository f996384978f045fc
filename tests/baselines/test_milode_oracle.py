"""miloDE's per-neighbourhood edgeR test and correction across neighbourhoods against R's numbers.

The inputs (pseudobulks of 7 overlapping neighbourhoods, 8 samples, 200 genes) and edgeR 3.40's
results are stored in ``data/``; ``data/make_milode_oracle.R`` made them (R is not needed here).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from mrvi_repro.baselines._milode import _design, _filter_genes, correct_across_nhoods, ql_test

DATA = Path(__file__).parent / "data"
MIN_CELLS, MIN_COUNT = 3, 3.0  # miloDE's defaults, as make_milode_oracle.R ran it
DESIGNS = {"~ cond": False, "~ batch + cond": True}  # design -> batch in it
# p-values (raw, FDR, corrected across nhoods) to 1e-6 relative (measured: at most 9.1e-9);
# logFC to 1e-6 absolute in log2 units (measured: at most 5.4e-8): edgeR and edgepython stop
# their iterative fits at slightly different points, which is relative noise near logFC = 0
TOLERANCE = {
    "logFC": {"rtol": 0, "atol": 1e-6},
    "PValue": {"rtol": 1e-6, "atol": 0},
    "FDR": {"rtol": 1e-6, "atol": 0},
    "pval_corrected_across_nhoods": {"rtol": 1e-6, "atol": 0},
}


@pytest.fixture(scope="module")
def stored():
    samples = pd.read_csv(DATA / "milode_oracle_samples.tsv", sep="\t", index_col="sample")
    meta = samples.rename(columns={"cond": "covariate"})
    pseudobulk = pd.read_csv(DATA / "milode_oracle_pseudobulk.tsv.gz", sep="\t")
    pairs = pd.read_csv(DATA / "milode_oracle_nhoods.tsv.gz", sep="\t")
    n_nhoods = int(pseudobulk["nhood"].max()) + 1
    nhoods = sparse.csr_matrix(
        (np.ones(len(pairs)), (pairs["cell"], pairs["nhood"])),
        shape=(int(pairs["cell"].max()) + 1, n_nhoods),
    )
    oracle = pd.read_csv(DATA / "milode_oracle_edger.tsv.gz", sep="\t")
    return meta, pseudobulk, nhoods, oracle


def run_ours(meta, pseudobulk, nhoods, batched):
    """The steps of :func:`milode` after the pseudobulk, on the stored pseudobulks."""
    genes = pseudobulk.columns[3:]
    n_nhoods = nhoods.shape[1]
    logfc, pval, fdr = (np.full((n_nhoods, genes.size), np.nan) for _ in range(3))
    for j in range(n_nhoods):
        rows = pseudobulk[(pseudobulk["nhood"] == j) & (pseudobulk["n_cells"] >= MIN_CELLS)]
        counts = rows.set_index("sample")[genes]
        design = _design(meta.loc[counts.index], batched)
        if design is None:
            continue
        keep = _filter_genes(counts, MIN_COUNT)
        table = ql_test(counts, design, keep, legacy=True)
        logfc[j, keep] = table["logFC"].to_numpy()
        pval[j, keep] = table["PValue"].to_numpy()
        fdr[j, keep] = table["FDR"].to_numpy()
    across = correct_across_nhoods(pval, nhoods)
    wide = {"logFC": logfc, "PValue": pval, "FDR": fdr, "pval_corrected_across_nhoods": across}
    nhood, gene = np.nonzero(np.isfinite(pval))
    return pd.DataFrame(
        {"nhood": nhood, "gene": genes[gene], **{k: v[nhood, gene] for k, v in wide.items()}}
    )


@pytest.mark.parametrize("design", list(DESIGNS))
def test_matches_edger_3_40(stored, design):
    meta, pseudobulk, nhoods, oracle = stored
    ours = run_ours(meta, pseudobulk, nhoods, DESIGNS[design])
    theirs = oracle[oracle["design"] == design].drop(columns="design")
    # the same neighbourhoods tested (the last holds one level of cond) and genes kept
    assert sorted(theirs["nhood"].unique()) == list(range(6))
    keys = ["nhood", "gene"]
    pd.testing.assert_frame_equal(
        ours[keys].reset_index(drop=True),
        theirs.sort_values(keys)[keys].reset_index(drop=True),
    )
    merged = ours.merge(theirs, on=keys, suffixes=("", "_r"))
    for column, tolerance in TOLERANCE.items():
        np.testing.assert_allclose(
            merged[column], merged[f"{column}_r"], **tolerance, err_msg=column
        )
    # the data exercise both branches of the correction: genes tested in one neighbourhood keep
    # their raw p-value, the others are corrected over the neighbourhoods that tested them
    n_tested = merged.groupby("gene")["nhood"].transform("size")
    alone = merged[n_tested == 1]
    assert len(alone) >= 3
    np.testing.assert_array_equal(alone["pval_corrected_across_nhoods"], alone["PValue"])
    several = merged[(n_tested > 1) & (n_tested < 6)]
    assert len(several) >= 10
