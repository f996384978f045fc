# Analyses of the fitted MrVI: results/{dataset}/analysis/. Settings: the dataset entry's `analysis`
# section; each rule's params hold only the part it uses.


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
        mem_mb=grow(8000, 15),
        runtime=grow(60, 0.1),
    params:
        entry=analysis_entry("distances"),
    script:
        "../scripts/sample_distances.py"


rule stratify_cells:
    input:
        model="results/{dataset}/model/mrvi",
        h5ad="results/{dataset}/data/preprocessed.h5ad",
    output:
        "results/{dataset}/analysis/stratification.nc",
    log:
        "results/{dataset}/logs/stratify_cells.log",
    benchmark:
        "results/{dataset}/benchmarks/stratify_cells.tsv"
    threads: 2
    resources:
        mem_mb=grow(8000, 15),
        runtime=grow(120, 0.3),
    params:
        entry=analysis_entry("stratify"),
    script:
        "../scripts/stratify_cells.py"


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
        mem_mb=grow(8000, 15),
        runtime=grow(60, 0.2),
    params:
        entry=analysis_entry(),
    script:
        "../scripts/differential_abundance.py"


rule differential_expression:
    input:
        model="results/{dataset}/model/mrvi",
        h5ad="results/{dataset}/data/preprocessed.h5ad",
    output:
        "results/{dataset}/analysis/de.nc",
    log:
        "results/{dataset}/logs/differential_expression.log",
    benchmark:
        "results/{dataset}/benchmarks/differential_expression.tsv"
    threads: 2
    resources:
        mem_mb=grow(8000, 15),
        runtime=grow(240, 0.3),
    params:
        entry=analysis_entry("de"),
    script:
        "../scripts/differential_expression.py"
