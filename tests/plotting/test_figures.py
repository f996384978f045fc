"""Whole figures assembled from result objects: tables built right, every panel drawable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mrvi_repro.plotting import (
    FIG2_PANELS,
    Panel,
    metric_figures,
    runtime_figure,
    runtime_table,
    save_figure,
    save_panels,
    semisynthetic_cell_table,
    semisynthetic_figure,
    umap_table,
)


def test_umap_table_is_tidy_and_seeded():
    rng = np.random.default_rng(0)
    obs = pd.DataFrame(index=[f"c{i}" for i in range(120)])
    lat = {"MrVI u": rng.normal(size=(120, 3)), "MrVI z": rng.normal(size=(120, 5))}
    a = umap_table(lat, obs, n_neighbors=10, seed=0)
    assert list(a.columns) == ["cell", "panel", "x", "y"] and len(a) == 240
    assert list(a["panel"].unique()) == ["MrVI u", "MrVI z"]
    assert np.isfinite(a[["x", "y"]].to_numpy()).all()
    with pytest.raises(ValueError, match="cells=120"):
        umap_table({"bad": lat["MrVI u"][:5]}, obs)


def _results(rng, n=90, samples=6):
    cells = np.array([f"c{i}" for i in range(n)])
    obs = pd.DataFrame(
        {
            "subset": np.resize(["A", "B", "C", "Other"], n),
            "covariate_1": np.resize(["G1", "G2"], n),
            "da_cell": np.resize([False, True, True, False], n),
        },
        index=cells,
    )
    emb = pd.concat(
        [
            pd.DataFrame(
                {"cell": cells, "panel": p, "x": rng.normal(size=n), "y": rng.normal(size=n)}
            )
            for p in ("MrVI u", "MrVI z")
        ],
        ignore_index=True,
    )
    da = xr.Dataset(
        {
            "log_ratio_cov2": ("cell", rng.normal(size=n)),
            "log_ratio_cov2_per_dimension": ("cell", rng.normal(size=n)),
        },
        coords={"cell": cells},
    )
    for name in da.data_vars:
        da[name].attrs.update(group_a="True", group_b="False")
    de = xr.Dataset(
        {"beta": (("cell", "covariate", "latent"), rng.normal(size=(n, 1, 4)))},
        coords={"cell": cells, "covariate": ["cov1_True"]},
    )
    names = [f"S{i}" for i in range(samples)]
    d = rng.random((3, samples, samples)) * np.array([1.0, 0.25, 1.0])[:, None, None]
    d = (d + d.transpose(0, 2, 1)) / 2
    d[:, np.arange(samples), np.arange(samples)] = 0
    dist = xr.DataArray(
        d,
        dims=("group", "sample_x", "sample_y"),
        coords={"group": ["0", "1", "2"], "sample_x": names, "sample_y": names},
    )
    pr = pd.DataFrame(
        {
            "method": ["mrvi"] * 3 + ["mrvi_per_dimension"] * 3 + ["milo"] * 3,
            "recall": [1, 0.5, 0] * 3,
            "precision": [0.5, 0.8, 1] * 3,
            "auc": [0.7] * 3 + [0.9] * 3 + [0.6] * 3,
        }
    )
    lfc = pd.DataFrame(
        {
            "method": ["mrvi"] * 5 + ["milode"] * 5,
            "gene": [f"g{i}" for i in range(5)] * 2,
            "lfc": rng.normal(size=10),
            "reference_lfc": rng.normal(size=10),
            "r": [0.8] * 5 + [0.9] * 5,
        }
    )
    return emb, obs, da, de, dist, pr, lfc


def test_semisynthetic_figure_draws_every_panel(tmp_path):
    emb, obs, da, de, dist, pr, lfc = _results(np.random.default_rng(1))
    panels = semisynthetic_figure(
        emb,
        obs,
        da,
        de,
        dist,
        pr,
        lfc,
        subset_clusters={"A": "0", "B": "1", "C": "2"},
        da_covariate="cov2",
        de_covariate="cov1",
    )
    assert list(panels) == list(FIG2_PANELS)
    assert len(FIG2_PANELS) == 9 and "fig2e_pr_curves" in FIG2_PANELS
    # the beta-norm map shows sum(beta^2) of each cell
    cells = semisynthetic_cell_table(emb, obs, da, de, da_covariate="cov2", de_covariate="cov1")
    assert cells.attrs["de_column"] == "cov1_True" and len(cells) == len(emb)
    data = cells[cells["panel"] == "MrVI u"].set_index("cell")["beta_norm2"]
    expected = (de["beta"].values[:, 0] ** 2).sum(axis=1)
    np.testing.assert_allclose(data.loc[de["cell"].values].to_numpy(), expected, rtol=1e-6)
    for name in ("fig2c_distances_A", "fig2d_da", "fig2g_lfc_scatter"):
        p = panels[name]
        out = save_figure(p.plot, tmp_path / f"{name}.png", width=p.width, height=p.height)
        assert out.stat().st_size > 5000
    # subsets A and B on one colour scale (B's distances are a quarter of A's here)
    limits = {s: panels[f"fig2c_distances_{s}"].plot.scales.get_scales("fill").limits for s in "AB"}
    assert limits["A"] == limits["B"] == (0.0, pytest.approx(float(dist.sel(group="0").max())))
    # the DA panels show the mixture estimator; the PR curves both, with the no-skill line
    assert cells.attrs["da_estimator"] == "mixture"
    pr = panels["fig2e_pr_curves"].plot
    hline = next(la for la in pr.layers if type(la.geom).__name__ == "geom_hline")
    assert hline.geom.data["yintercept"].tolist() == [0.5]  # obs["da_cell"].mean()
    assert pr.scales.get_scales("color").labels[0] == "MrVI, mixture DA (AUC 0.700)"
    # readable titles: no code names
    titles = {name: p.plot.labels.title for name, p in panels.items()}
    assert titles["fig2d_da"] == "MrVI DA: cov2 True vs False"
    assert titles["fig2f_beta_norm"] == "MrVI DE effect size: cov1 True vs the rest"
    assert not any("_" in t for t in titles.values()), titles
    with pytest.raises(ValueError, match="design columns"):
        semisynthetic_figure(
            emb,
            obs,
            da,
            de,
            dist,
            pr,
            lfc,
            subset_clusters={"A": "0", "B": "1"},
            da_covariate="cov2",
            de_covariate="nope",
        )


def test_metric_and_runtime_figures(tmp_path):
    summary = pd.DataFrame(
        {
            "method": ["mrvi", "milo", "mrvi"],
            "metric": ["da_pr_auc", "da_pr_auc", "rf_distance"],
            "value": [0.7, 0.8, 0.5],
        }
    )
    panels = metric_figures(summary, summary.iloc[:0])
    # an empty table (a dataset without labels_key) gives a panel saying why, not a missing file
    assert set(panels) == {"summary_metrics", "integration_metrics"}
    empty = panels["integration_metrics"].plot
    assert [layer.geom.__class__.__name__ for layer in empty.layers] == ["geom_text"]
    assert "labels_key" in empty.layers[0].geom.aes_params["label"]
    out = save_figure(empty, tmp_path / "empty.png", width=6.0, height=1.5)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bench = pd.DataFrame({"s": [3.0, 1.0], "max_rss": [100.0, "-"]})
    panel = runtime_figure({"fit_mrvi": bench.iloc[:1], "milo": bench.iloc[1:]})
    table = runtime_table({"fit_mrvi": bench.iloc[:1], "milo": bench.iloc[1:]})
    assert list(table["rule"]) == ["fit_mrvi", "milo"]
    assert table["max_rss_mib"].isna().tolist() == [False, True]  # "-": not measured
    assert save_figure(panel.plot, tmp_path / "runtime.png").stat().st_size > 5000


def test_save_panels_writes_each_panel_at_its_size(tmp_path):
    import struct

    from plotnine import aes, geom_point, ggplot

    plot = ggplot(pd.DataFrame({"x": [0, 1], "y": [1, 0]}), aes("x", "y")) + geom_point()
    panels = {"wide": Panel(plot, 6.0, 2.0), "tall": Panel(plot, 2.0, 4.0)}
    paths = {name: tmp_path / f"{name}.png" for name in panels}
    save_panels(panels, paths)
    sizes = {n: struct.unpack(">II", p.read_bytes()[16:24]) for n, p in paths.items()}
    assert sizes == {"wide": (900, 300), "tall": (300, 600)}  # inches x 150 dpi
