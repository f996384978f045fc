# Files from outside the workflow: resources/{resource}, one job per entry of the download
# registry (config/downloads.yaml; key = the file's path under resources/), checked against the
# lock file (config/downloads.lock.tsv). config["downloads"] may name another registry, lock file
# and folder of hand-placed files (keys and defaults: workflow/schemas/config.schema.yaml).
# Registry and lock paths resolve as dataset entries do (working directory, then the Snakefile's
# folder); the folder of hand-placed files is relative to the working directory. The registry is
# loaded in common.smk (REGISTRY, DOWNLOADS).


rule download:
    output:
        "resources/{resource}",
    log:
        "resources/logs/{resource}.log",
    benchmark:
        "resources/benchmarks/{resource}.tsv"
    wildcard_constraints:
        resource="|".join(map(re.escape, REGISTRY)) or "^$",
    # 0, not left out: a rule without `retries` takes --retries (the SLURM profile's 1), and a
    # second attempt only repeats a permanent error (404, 403, a refused file); passing failures
    # (timeouts, 5xx, dropped connections) are retried inside the job, with backoff and resume.
    retries: 0
    conda:
        DOWNLOAD_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=360,
    params:
        entry=get_registry_entry,
        lock=str(resolve_path(DOWNLOADS["lock"]).absolute()),
        manual_dir=DOWNLOADS["manual_dir"],
    script:
        "../scripts/download.py"
