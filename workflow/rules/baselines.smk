# Baselines: scVI and PCA representations, composition distances on each, DESeq2 pseudobulk, Milo
# (DA) and miloDE (DE per neighbourhood): results/{dataset}/model/scvi/ and
# results/{dataset}/baselines/. Settings: the dataset entry's
# `baselines` section; each rule's params hold only the keys it uses.


rule fit_scvi:
    input:
        rules.preprocess_dataset.output.h5ad,
    output:
        model=directory("results/{dataset}/model/scvi"),
        history="results/{dataset}/model/scvi_history.tsv",
    log:
        "results/{dataset}/logs/fit_scvi.log",
    benchmark:
        "results/{dataset}/benchmarks/fit_scvi.tsv"
    conda:
        CONDA_ENV
    threads: 4
    resources:
        mem_mb=grow(8000, 20),
        runtime=fit_runtime(120, 0.0055, model="scvi"),
    params:
        checkpoint="results/{dataset}/model/scvi.checkpoint",
        entry=baselines_entry("scvi"),
    script:
        "../scripts/fit_scvi.py"


rule representations:
    input:
        model=rules.fit_scvi.output.model,
        h5ad=rules.preprocess_dataset.output.h5ad,
    output:
        "results/{dataset}/baselines/representations.h5ad",
    log:
        "results/{dataset}/logs/representations.log",
    benchmark:
        "results/{dataset}/benchmarks/representations.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=grow(8000, 15),
        runtime=grow(30, 0.1),
    params:
        entry=baselines_entry("pca", "seed"),
    script:
        "../scripts/representations.py"


rule composition_distances:
    input:
        rules.representations.output[0],
    output:
        "results/{dataset}/baselines/composition_{rep}.nc",
    log:
        "results/{dataset}/logs/composition_distances/{rep}.log",
    benchmark:
        "results/{dataset}/benchmarks/composition_distances/{rep}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(4000, 40),
        runtime=grow(30, 0.5),
    params:
        entry=baselines_entry("composition", "seed"),
    script:
        "../scripts/composition_distances.py"


rule deseq2_pseudobulk:
    input:
        rules.preprocess_dataset.output.h5ad,
    output:
        "results/{dataset}/baselines/deseq2.tsv",
    log:
        "results/{dataset}/logs/deseq2_pseudobulk.log",
    benchmark:
        "results/{dataset}/benchmarks/deseq2_pseudobulk.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=grow(8000, 15),
        runtime=grow(60, 0.1),
    params:
        entry=baselines_entry("deseq2"),
    script:
        "../scripts/deseq2_pseudobulk.py"


# Milo and miloDE run single-threaded (pydeseq2 per covariate; edgeR fits per neighbourhood).
rule milo:
    input:
        h5ad=rules.preprocess_dataset.output.h5ad,
        representations=rules.representations.output[0],
    output:
        "results/{dataset}/baselines/milo.nc",
    log:
        "results/{dataset}/logs/milo.log",
    benchmark:
        "results/{dataset}/benchmarks/milo.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(4000, 25),
        runtime=grow(60, 0.3),
    params:
        entry=baselines_entry("milo"),
    script:
        "../scripts/milo.py"


rule milode:
    input:
        h5ad=rules.preprocess_dataset.output.h5ad,
        representations=rules.representations.output[0],
    output:
        lfc="results/{dataset}/baselines/milode.nc",
        table="results/{dataset}/baselines/milode.tsv",
    log:
        "results/{dataset}/logs/milode.log",
    benchmark:
        "results/{dataset}/benchmarks/milode.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(8000, 20),
        runtime=grow(120, 0.3),
    params:
        entry=baselines_entry("milode"),
    script:
        "../scripts/milode.py"
