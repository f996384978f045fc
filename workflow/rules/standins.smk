# Stand-in mode (config `standins`; config/standins.yaml): the files the entries read, written by
# the seeded stand-in writers (mrvi_repro.testing.standins) under resources/standins/ instead of
# downloaded; one rule per writer, named standin_<writer>.


for _writer, _keys in standin_groups().items():

    rule:
        name:
            f"standin_{_writer}"
        output:
            [resource_path(k) for k in _keys],
        log:
            f"resources/standins/logs/{_writer}.log",
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=4000,
            runtime=20,
        params:
            resources_keys=_keys,
            seed=STANDINS["seed"],
            sizes=STANDINS["sizes"].get(_writer, {}),
        script:
            "../scripts/standin_files.py"
