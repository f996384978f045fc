# The dataset entry's named comparisons: results/{dataset}/comparisons/. Settings: the entry's
# `comparisons` section (config/README.md, "Comparisons"); each rule's params hold the MrVI entry
# and that section.


rule sample_groups:
    input:
        stratification=rules.stratify_cells.output[0],
        h5ad=rules.preprocess_dataset.output.h5ad,
    output:
        groups="results/{dataset}/comparisons/sample_groups.tsv",
        tests="results/{dataset}/comparisons/sample_group_tests.tsv",
    log:
        "results/{dataset}/logs/sample_groups.log",
    benchmark:
        "results/{dataset}/benchmarks/sample_groups.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(4000, 4),
        runtime=grow(20, 0.05),
    params:
        entry=comparisons_entry,
    script:
        "../scripts/sample_groups.py"


rule de_comparison:
    input:
        unpack(de_comparison_inputs),
        model=rules.fit_mrvi.output.model,
        h5ad=rules.preprocess_dataset.output.h5ad,
    output:
        de="results/{dataset}/comparisons/de/{comparison}/de.nc",
        lfc=directory("results/{dataset}/comparisons/de/{comparison}/lfc.zarr"),
        modules="results/{dataset}/comparisons/de/{comparison}/modules.tsv",
        gsea="results/{dataset}/comparisons/de/{comparison}/gsea.tsv",
    log:
        "results/{dataset}/logs/de_comparison/{comparison}.log",
    benchmark:
        "results/{dataset}/benchmarks/de_comparison/{comparison}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=grow(8000, 15),
        runtime=de_runtime(240, 0.3, comparison=True),
    params:
        entry=comparisons_entry,
    script:
        "../scripts/de_comparison.py"


rule da_comparison:
    input:
        unpack(da_comparison_inputs),
        model=rules.fit_mrvi.output.model,
        h5ad=rules.preprocess_dataset.output.h5ad,
    output:
        da="results/{dataset}/comparisons/da/{comparison}/da.nc",
        test="results/{dataset}/comparisons/da/{comparison}/cluster_test.tsv",
    log:
        "results/{dataset}/logs/da_comparison/{comparison}.log",
    benchmark:
        "results/{dataset}/benchmarks/da_comparison/{comparison}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=grow(8000, 15),
        runtime=grow(60, 0.2),
    params:
        entry=comparisons_entry,
    script:
        "../scripts/da_comparison.py"
