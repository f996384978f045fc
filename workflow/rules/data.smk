# Obtaining and preprocessing datasets: results/{dataset}/raw/ and results/{dataset}/data/; the
# sci-Plex screen shared by the cell-line datasets: results/_shared/sciplex_screen/{screen}/.


rule simulate_base:
    output:
        "results/{dataset}/raw/base.h5ad",
    log:
        "results/{dataset}/logs/simulate_base.log",
    benchmark:
        "results/{dataset}/benchmarks/simulate_base.tsv"
    wildcard_constraints:
        dataset="|".join(SIMULATED) or "^$",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=simulated_mem_mb,
        runtime=simulated_runtime,
    params:
        entry=get_data_entry,
    script:
        "../scripts/simulate_base.py"


rule sciplex_screen:
    input:
        unpack(get_screen_inputs),
    output:
        "results/_shared/sciplex_screen/{screen}/screen.h5ad",
    log:
        "results/_shared/sciplex_screen/{screen}/screen.log",
    benchmark:
        "results/_shared/sciplex_screen/{screen}/benchmark.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(8000, 6),
        runtime=grow(240, 0.05),
    params:
        screen=get_screen_settings,
    script:
        "../scripts/sciplex_screen.py"


rule preprocess_dataset:
    input:
        unpack(get_dataset_inputs),
    output:
        h5ad="results/{dataset}/data/preprocessed.h5ad",
        samples="results/{dataset}/data/samples.tsv",
        counts=report(
            "results/{dataset}/data/counts.tsv",
            caption="../report/dataset_counts.rst",
            category="Data",
            subcategory="{dataset}",
        ),
    log:
        "results/{dataset}/logs/preprocess_dataset.log",
    benchmark:
        "results/{dataset}/benchmarks/preprocess_dataset.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(8000, 4),
        runtime=grow(60, 0.05),
    params:
        entry=get_data_entry,
    script:
        "../scripts/preprocess_dataset.py"
