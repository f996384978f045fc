# Analyses of the fitted MrVI: results/{dataset}/analysis/. Settings: the dataset entry's `analysis`
# section; each rule's params hold only the part it uses.


rule sample_distances:
    input:
        model=rules.fit_mrvi.output.model,
        h5ad=rules.preprocess_dataset.output.h5ad,
    output:
        "results/{dataset}/analysis/sample_distances.nc",
    log:
        "results/{dataset}/logs/sample_distances.log",
    benchmark:
        "results/{dataset}/benchmarks/sample_distances.tsv"
    conda:
        CONDA_ENV
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
        model=rules.fit_mrvi.output.model,
        h5ad=rules.preprocess_dataset.output.h5ad,
    output:
        "results/{dataset}/analysis/stratification.nc",
    log:
        "results/{dataset}/logs/stratify_cells.log",
    benchmark:
        "results/{dataset}/benchmarks/stratify_cells.tsv"
    conda:
        CONDA_ENV
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
        model=rules.fit_mrvi.output.model,
        h5ad=rules.preprocess_dataset.output.h5ad,
    output:
        "results/{dataset}/analysis/da.nc",
    log:
        "results/{dataset}/logs/differential_abundance.log",
    benchmark:
        "results/{dataset}/benchmarks/differential_abundance.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=grow(8000, 15),
        runtime=grow(60, 0.2),
    params:
        entry=analysis_entry("da"),
    script:
        "../scripts/differential_abundance.py"


rule differential_expression:
    input:
        model=rules.fit_mrvi.output.model,
        h5ad=rules.preprocess_dataset.output.h5ad,
    output:
        "results/{dataset}/analysis/de.nc",
    log:
        "results/{dataset}/logs/differential_expression.log",
    benchmark:
        "results/{dataset}/benchmarks/differential_expression.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=grow(8000, 15),
        runtime=de_runtime(240, 0.3),
    params:
        entry=analysis_entry("de"),
    script:
        "../scripts/differential_expression.py"
