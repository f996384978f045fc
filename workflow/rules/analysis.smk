# Analyses of the fitted MrVI: results/{dataset}/analysis/.


rule sample_distances:
    input:
        model="results/{dataset}/model/mrvi",
        h5ad="results/{dataset}/data/preprocessed.h5ad",
    output:
        "results/{dataset}/analysis/sample_distances.nc",
    log:
        "results/{dataset}/logs/sample_distances.log",
    benchmark:
        "results/{dataset}/benchmarks/sample_distances.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        analysis=get_analysis_params,
    script:
        "../scripts/sample_distances.py"


rule differential_abundance:
    input:
        model="results/{dataset}/model/mrvi",
        h5ad="results/{dataset}/data/preprocessed.h5ad",
    output:
        "results/{dataset}/analysis/da.nc",
    log:
        "results/{dataset}/logs/differential_abundance.log",
    benchmark:
        "results/{dataset}/benchmarks/differential_abundance.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        analysis=get_analysis_params,
    script:
        "../scripts/differential_abundance.py"
