# Figures (plotnine): results/{dataset}/figures/. Every final figure is in the Snakemake report
# (`snakemake --report report.html`) with a caption saying what to look for. Target rules:
# `fig2` (the semi-synthetic benchmark's panels) and `benchmarks` (run time and memory per rule).


rule embeddings_2d:
    input:
        "results/{dataset}/model/mrvi_latent.h5ad",
    output:
        "results/{dataset}/figures/data/umap.tsv.gz",
    log:
        "results/{dataset}/logs/embeddings_2d.log",
    benchmark:
        "results/{dataset}/benchmarks/embeddings_2d.tsv"
    threads: 2
    resources:
        mem_mb=grow(4000, 40),
        runtime=grow(30, 1),
    params:
        seed=lambda wc: DATASETS[wc.dataset].get("mrvi", {}).get("seed", 0),
    script:
        "../scripts/embeddings_2d.py"


rule fig2_panels:
    input:
        umap="results/{dataset}/figures/data/umap.tsv.gz",
        h5ad="results/{dataset}/data/preprocessed.h5ad",
        da="results/{dataset}/analysis/da.nc",
        de="results/{dataset}/analysis/de.nc",
        distances="results/{dataset}/analysis/sample_distances.nc",
        pr_curves="results/{dataset}/metrics/da_pr.tsv",
        lfc_scatter="results/{dataset}/metrics/de_lfc.tsv",
    output:
        **{
            panel: report(
                f"results/{{dataset}}/figures/{panel}.png",
                caption=f"../report/{panel}.rst",
                category="Figure 2",
                subcategory="{dataset}",
            )
            for panel in FIG2_PANELS
        },
    log:
        "results/{dataset}/logs/fig2_panels.log",
    benchmark:
        "results/{dataset}/benchmarks/fig2_panels.tsv"
    threads: 1
    resources:
        mem_mb=grow(4000, 5),
        runtime=grow(20, 0.05),
    script:
        "../scripts/fig2_panels.py"


rule metric_figures:
    input:
        summary="results/{dataset}/metrics/summary.tsv",
        integration="results/{dataset}/metrics/integration.tsv",
    output:
        summary=report(
            "results/{dataset}/figures/summary_metrics.png",
            caption="../report/summary_metrics.rst",
            category="Metrics",
            subcategory="{dataset}",
        ),
        integration=report(
            "results/{dataset}/figures/integration_metrics.png",
            caption="../report/integration_metrics.rst",
            category="Metrics",
            subcategory="{dataset}",
        ),
    log:
        "results/{dataset}/logs/metric_figures.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/metric_figures.py"


rule runtime_figure:
    input:
        get_benchmark_files,
    output:
        report(
            "results/{dataset}/figures/runtime.png",
            caption="../report/runtime.rst",
            category="Run time and memory",
            subcategory="{dataset}",
        ),
    log:
        "results/{dataset}/logs/runtime_figure.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/runtime_figure.py"


rule fig2:
    input:
        [
            f"results/{name}/figures/{panel}.png"
            for name in SEMISYNTHETIC
            for panel in FIG2_PANELS
        ],


rule benchmarks:
    input:
        expand("results/{dataset}/figures/runtime.png", dataset=DATASETS),
