# MrVI: fit on the preprocessed data, then the latent u and z of every cell: results/{dataset}/model/.


rule fit_mrvi:
    input:
        rules.preprocess_dataset.output.h5ad,
    output:
        model=directory("results/{dataset}/model/mrvi"),
        history="results/{dataset}/model/mrvi_history.tsv",
    log:
        "results/{dataset}/logs/fit_mrvi.log",
    benchmark:
        "results/{dataset}/benchmarks/fit_mrvi.tsv"
    conda:
        CONDA_ENV
    threads: 4
    resources:
        mem_mb=grow(16000, 30),
        runtime=fit_runtime(240, 0.0055),
    params:
        checkpoint="results/{dataset}/model/mrvi.checkpoint",
        entry=get_mrvi_entry,
    script:
        "../scripts/fit_mrvi.py"


rule latent_mrvi:
    input:
        model=rules.fit_mrvi.output.model,
        h5ad=rules.preprocess_dataset.output.h5ad,
    output:
        "results/{dataset}/model/mrvi_latent.h5ad",
    log:
        "results/{dataset}/logs/latent_mrvi.log",
    benchmark:
        "results/{dataset}/benchmarks/latent_mrvi.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=grow(8000, 15),
        runtime=grow(30, 0.1),
    script:
        "../scripts/latent_mrvi.py"


rule fit_mrvi_variant:
    input:
        rules.preprocess_dataset.output.h5ad,
    output:
        model=directory("results/{dataset}/model/variants/{variant}/mrvi"),
        history="results/{dataset}/model/variants/{variant}/mrvi_history.tsv",
    log:
        "results/{dataset}/logs/fit_mrvi_variant/{variant}.log",
    benchmark:
        "results/{dataset}/benchmarks/fit_mrvi_variant/{variant}.tsv"
    conda:
        CONDA_ENV
    threads: 4
    resources:
        mem_mb=grow(16000, 30),
        runtime=fit_runtime(240, 0.0055, variant=True),
    params:
        checkpoint="results/{dataset}/model/variants/{variant}/mrvi.checkpoint",
        entry=get_variant_entry,
        variant="{variant}",
    script:
        "../scripts/fit_mrvi.py"


rule latent_mrvi_variant:
    input:
        model=rules.fit_mrvi_variant.output.model,
        h5ad=rules.preprocess_dataset.output.h5ad,
    output:
        "results/{dataset}/model/variants/{variant}/mrvi_latent.h5ad",
    log:
        "results/{dataset}/logs/latent_mrvi_variant/{variant}.log",
    benchmark:
        "results/{dataset}/benchmarks/latent_mrvi_variant/{variant}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=grow(8000, 15),
        runtime=grow(30, 0.1),
    script:
        "../scripts/latent_mrvi.py"
