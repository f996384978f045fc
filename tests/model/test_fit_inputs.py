"""What fitting refuses before it compiles, and what it writes: the same bytes for the same seed."""

from __future__ import annotations

import anndata as ad
import h5py
import numpy as np
import pytest
from scipy import sparse

import mrvi_repro.data.contract as contract
import mrvi_repro.model._fitted as fitted_module
from mrvi_repro.data.contract import DataContractError
from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.model import (
    SCVI,
    MrVI,
    MrVIConfig,
    SCVIConfig,
    TrainConfig,
    latent_anndata,
    write_model,
)
from mrvi_repro.settings.data import SimulationParams

TINY = MrVIConfig(n_latent=4, n_latent_u=2, encoder_n_hidden=8, n_mixture=2)
TRAIN = TrainConfig(max_epochs=3, batch_size=64, n_epochs_kl_warmup=2)


@pytest.fixture(scope="module")
def cells():
    return simulate_base(SimulationParams(n_cells=200, n_genes=50, n_samples=3, seed=4))


@pytest.fixture
def no_compile(monkeypatch):
    """Make reaching the training loop (where compilation starts) a test failure."""

    def fail(*args, **kwargs):
        raise AssertionError("the fit reached the training loop")

    monkeypatch.setattr(fitted_module, "_train", fail)


def _with_x(adata, x):
    out = adata.copy()
    out.X = x
    return out


def test_mrvi_fit_refuses_log_normalised_counts(cells, no_compile):
    x = np.log1p(cells.X.toarray())  # dense, what sc.pp.log1p leaves
    n_frac = int((x != np.round(x)).sum())
    with pytest.raises(DataContractError) as err:
        MrVI.fit(_with_x(cells, x), sample_key="sample", config=TINY, train=TRAIN)
    msg = str(err.value)
    assert msg.startswith("MrVI.fit's adata violates the data contract")
    assert f"X has {n_frac} non-integer entries" in msg
    assert "not normalised or log-transformed values" in msg


def test_scvi_fit_refuses_nan_in_sparse_counts(cells, no_compile):
    x = cells.X.tocsr(copy=True).astype(np.float32)
    x.data[[3, 50, 700]] = [np.nan, np.inf, np.nan]
    with pytest.raises(DataContractError, match=r"X has 3 NaN or infinite entries") as err:
        SCVI.fit(_with_x(cells, x), config=SCVIConfig(n_latent=2), train=TRAIN)
    assert str(err.value).startswith("scVI.fit's adata violates the data contract")


def test_streamed_fit_refuses_negative_counts(cells, no_compile):
    x = cells.X.tocsr(copy=True)
    x.data[[1, 2]] = [-1.0, -4.0]
    streamed = TrainConfig(max_epochs=3, batch_size=64, max_dense_gib=0.0)
    assert streamed.streams(cells.n_obs, cells.n_vars)
    with pytest.raises(DataContractError, match=r"X has 2 negative entries \(min -4\)"):
        MrVI.fit(_with_x(cells, x), sample_key="sample", config=TINY, train=streamed)


@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_counts_are_checked_blockwise(monkeypatch, kind):
    # 7 entries per block: every problem spans several blocks, and each is counted once
    monkeypatch.setattr(contract, "_CHECK_BLOCK", 7)
    x = np.arange(1, 121, dtype=np.float64).reshape(12, 10)
    x[[0, 5, 11], [1, 6, 9]] = np.nan
    x[[2, 9], [0, 3]] = [-1.0, -3.0]
    x[[1, 4, 8, 10], [2, 2, 7, 0]] = [0.5, 1.5, 2.25, 7.75]
    matrix = x if kind == "dense" else sparse.csr_matrix(x)
    assert contract.count_problems(matrix) == [
        "X has 3 NaN or infinite entries",
        "X has 2 negative entries (min -3); raw counts are >= 0",
        "X has 4 non-integer entries (e.g. 0.5); it must hold raw counts, not normalised or "
        "log-transformed values",
    ]


def _write_fit(model, folder):
    """What rules fit_mrvi and fit_scvi write: the model folder and the history table."""
    write_model(model, folder / "model")
    model.history.to_csv(folder / "history.tsv", sep="\t", index=False)


def _files(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_same_seed_writes_the_same_bytes(tmp_path, cells):
    runs = []
    for run in ("a", "b"):
        model = MrVI.fit(cells, sample_key="sample", config=TINY, train=TRAIN, seed=5)
        _write_fit(model, tmp_path / run)
        runs.append((model, _files(tmp_path / run)))
    (first, a), (second, b) = runs
    assert sorted(a) == ["history.tsv", "model/model.json", "model/params.msgpack"]
    assert a == b
    # the timings are kept, only out of the files: in memory (and in the log)
    assert len(first.epoch_seconds) == 3 and min(first.epoch_seconds) > 0
    assert first.compile_seconds > 0 and second.compile_seconds > 0
    assert "seconds" not in first.history.columns
    assert b"second" not in a["history.tsv"] and b"second" not in a["model/model.json"]

    latent = latent_anndata(first, cells)
    latent.write_h5ad(tmp_path / "latent.h5ad")
    names = []
    with h5py.File(tmp_path / "latent.h5ad") as fh:
        fh["uns"].visit(names.append)
    assert "mrvi_history" in names
    assert not [n for n in names if "second" in n or "time" in n], names
    assert ad.read_h5ad(tmp_path / "latent.h5ad").uns["mrvi"]["n_epochs"] == 3
