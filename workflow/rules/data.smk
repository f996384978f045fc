# Obtaining and preprocessing datasets: results/{dataset}/raw/ and results/{dataset}/data/.


rule simulate_base:
    output:
        "results/{dataset}/raw/base.h5ad",
    log:
        "results/{dataset}/logs/simulate_base.log",
    benchmark:
        "results/{dataset}/benchmarks/simulate_base.tsv"
    wildcard_constraints:
        dataset="|".join(SIMULATED) or "^$",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        entry=get_data_entry,
    script:
        "../scripts/simulate_base.py"


rule preprocess_dataset:
    input:
        get_base_input,
    output:
        h5ad="results/{dataset}/data/preprocessed.h5ad",
        samples="results/{dataset}/data/samples.tsv",
    log:
        "results/{dataset}/logs/preprocess_dataset.log",
    benchmark:
        "results/{dataset}/benchmarks/preprocess_dataset.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        entry=get_data_entry,
    script:
        "../scripts/preprocess_dataset.py"
