# Benchmark metrics: results/{dataset}/metrics/. Semi-synthetic datasets (entries with a
# `semisynthetic` section) are scored against their planted truth (DA, DE, sample tree); every
# dataset gets the integration metrics. summary.tsv gathers all as method / metric / value.


rule da_metrics:
    input:
        h5ad=rules.preprocess_dataset.output.h5ad,
        mrvi=rules.differential_abundance.output[0],
        milo=rules.milo.output[0],
    output:
        curves="results/{dataset}/metrics/da_pr.tsv",
        records="results/{dataset}/metrics/da.tsv",
    log:
        "results/{dataset}/logs/da_metrics.log",
    benchmark:
        "results/{dataset}/benchmarks/da_metrics.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(2000, 4),
        runtime=grow(10, 0.02),
    script:
        "../scripts/da_metrics.py"


rule de_metrics:
    input:
        h5ad=rules.preprocess_dataset.output.h5ad,
        mrvi=rules.differential_expression.output[0],
        milode=rules.milode.output.lfc,
        deseq2=rules.deseq2_pseudobulk.output[0],
    output:
        scatter="results/{dataset}/metrics/de_lfc.tsv",
        records="results/{dataset}/metrics/de.tsv",
    log:
        "results/{dataset}/logs/de_metrics.log",
    benchmark:
        "results/{dataset}/benchmarks/de_metrics.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(2000, 4),
        runtime=grow(10, 0.02),
    script:
        "../scripts/de_metrics.py"


rule tree_metrics:
    input:
        h5ad=rules.preprocess_dataset.output.h5ad,
        mrvi=rules.sample_distances.output[0],
        composition_pca=with_rep(rules.composition_distances.output[0], "pca"),
        composition_scvi=with_rep(rules.composition_distances.output[0], "scvi"),
    output:
        table="results/{dataset}/metrics/trees.tsv",
        records="results/{dataset}/metrics/tree.tsv",
    log:
        "results/{dataset}/logs/tree_metrics.log",
    benchmark:
        "results/{dataset}/benchmarks/tree_metrics.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(2000, 4),
        runtime=grow(10, 0.02),
    script:
        "../scripts/tree_metrics.py"


rule integration_metrics:
    input:
        latent=rules.latent_mrvi.output[0],
        representations=rules.representations.output[0],
        variants=get_variant_latents,
    output:
        "results/{dataset}/metrics/integration.tsv",
    log:
        "results/{dataset}/logs/integration_metrics.log",
    benchmark:
        "results/{dataset}/benchmarks/integration_metrics.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=grow(8000, 60),
        runtime=grow(60, 1),
    params:
        entry=analysis_entry("integration"),
        variants=variant_names,
    script:
        "../scripts/integration_metrics.py"


rule metrics_summary:
    input:
        get_metric_records,
    output:
        report(
            "results/{dataset}/metrics/summary.tsv",
            caption="../report/summary_table.rst",
            category="Metrics",
            subcategory="{dataset}",
            labels=report_labels("1", "summary.tsv: every metric"),
        ),
    log:
        "results/{dataset}/logs/metrics_summary.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/metrics_summary.py"
