"""The lowest floor: typed settings of every stage and the names they share.

Standard library only. The workflow parses dataset entries at load time with these classes, so
``snakemake -n`` never imports JAX, scanpy or plotnine; each stage re-exports its own settings
(``mrvi_repro.model.MrVIConfig``, ``mrvi_repro.baselines.MiloConfig``...).

- :mod:`~mrvi_repro.settings.data`: sources, subsets, recipes, HVG selection, simulation and the
  semi-synthetic construction.
- :mod:`~mrvi_repro.settings.model`: MrVI and scVI architecture, training.
- :mod:`~mrvi_repro.settings.baselines`: Milo and miloDE.
- :mod:`~mrvi_repro.settings.names`: obsm keys, representation names, figure panels, linkages.
"""
