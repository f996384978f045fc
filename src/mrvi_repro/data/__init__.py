"""The data stage: from published files to the validated AnnData of the data contract.

One module per concern, imported by name (this file imports nothing, so that the download job
starts without loading anndata, scanpy or JAX):

- :mod:`~mrvi_repro.data.download`: the registry of files from outside, HTTP with resume, the
  lock file of sizes and checksums, hand-placed files.
- :mod:`~mrvi_repro.data.readers`: published formats (``.h5ad``, 10x archives, Single Cell Portal
  bundles) to raw counts, subset while reading.
- :mod:`~mrvi_repro.data.recipes`: the paper's dataset-specific steps (COVID-19, sci-Plex, IBD).
- :mod:`~mrvi_repro.data.preprocess`: counts check, HVG selection, the per-sample table.
- :mod:`~mrvi_repro.data.contract`: the data contract (:func:`validate_adata`).
- :mod:`~mrvi_repro.data.simulate` and :mod:`~mrvi_repro.data.semisynthetic`: the simulated
  base and the paper's semi-synthetic construction.

Their settings are in :mod:`mrvi_repro.settings.data`; the stand-ins of the published files,
for tests and the offline demo, in :mod:`mrvi_repro.testing.standins`.
"""
