# The perturbation-screen analyses of the paper's Fig. 4 (entries asking for `figures: {fig4:
# ...}`): results/{dataset}/analysis/screen/ and results/{dataset}/metrics/screen_metrics.tsv.
# Settings: the entry's `figures.fig4` section (mrvi_repro.settings.figures.Fig4Spec).


rule cmap_clusters:
    input:
        unpack(cmap_inputs),
        h5ad=rules.preprocess_dataset.output.h5ad,
    output:
        similarity="results/{dataset}/analysis/screen/cmap_similarity.tsv",
        clusters="results/{dataset}/analysis/screen/cmap_clusters.tsv",
    log:
        "results/{dataset}/logs/cmap_clusters.log",
    benchmark:
        "results/{dataset}/benchmarks/cmap_clusters.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(2000, 3),
        runtime=grow(10, 0.02),
    params:
        entry=figures_entry,
    script:
        "../scripts/cmap_clusters.py"


rule screen_clusters:
    input:
        unpack(screen_gene_sets),
        model=rules.fit_mrvi.output.model,
        h5ad=rules.preprocess_dataset.output.h5ad,
        distances=rules.sample_distances.output[0],
    output:
        clusters="results/{dataset}/analysis/screen/clusters.tsv",
        de="results/{dataset}/analysis/screen/de.nc",
        enrichment="results/{dataset}/analysis/screen/enrichment.tsv",
    log:
        "results/{dataset}/logs/screen_clusters.log",
    benchmark:
        "results/{dataset}/benchmarks/screen_clusters.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=grow(8000, 15),
        runtime=grow(60, 0.2),
    params:
        entry=figures_entry,
    script:
        "../scripts/screen_clusters.py"


rule screen_metrics:
    input:
        unpack(screen_metric_inputs),
        h5ad=rules.preprocess_dataset.output.h5ad,
        mrvi=rules.sample_distances.output[0],
        pca=expand(
            rules.composition_distances.output[0], rep="pca", allow_missing=True
        )[0],
        scvi=expand(
            rules.composition_distances.output[0], rep="scvi", allow_missing=True
        )[0],
    output:
        "results/{dataset}/metrics/screen_metrics.tsv",
    log:
        "results/{dataset}/logs/screen_metrics.log",
    benchmark:
        "results/{dataset}/benchmarks/screen_metrics.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(2000, 3),
        runtime=grow(10, 0.02),
    params:
        entry=figures_entry,
    script:
        "../scripts/screen_metrics.py"
