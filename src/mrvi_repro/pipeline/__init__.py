"""The top floor: dataset entries and the stages as an entry drives them (one function per rule).

:mod:`~mrvi_repro.pipeline.entry` parses a dataset entry (``config/datasets/*.yaml``) into
:class:`DatasetSpec`; the other modules call the stages with the entry's settings:
:mod:`~mrvi_repro.pipeline.data` (simulation, preprocessing), :mod:`~mrvi_repro.pipeline.model`
(fits), :mod:`~mrvi_repro.pipeline.analysis` (MrVI's analyses),
:mod:`~mrvi_repro.pipeline.baselines` and :mod:`~mrvi_repro.pipeline.metrics`. No stage imports
this package. The workflow's adapters import these modules by name (``mrvi_repro.pipeline.model``
...), so a job loads only the stages it runs; this file imports the entry alone (standard
library, PyYAML and jsonschema), which the workflow parses at load time.
"""

from .entry import (
    AnalysisSpec,
    BaselinesSpec,
    CompositionSpec,
    DASpec,
    DatasetSpec,
    DESeq2Spec,
    DESpec,
    DistancesSpec,
    IntegrationSpec,
    MiloDESpec,
    MiloSpec,
    MrVISpec,
    PCASpec,
    SCVISpec,
    SpecError,
    StratifySpec,
    check_schema,
    merge_entry,
)

__all__ = [
    "AnalysisSpec",
    "BaselinesSpec",
    "CompositionSpec",
    "DESeq2Spec",
    "DASpec",
    "DESpec",
    "DatasetSpec",
    "DistancesSpec",
    "MiloDESpec",
    "MiloSpec",
    "MrVISpec",
    "PCASpec",
    "SCVISpec",
    "SpecError",
    "StratifySpec",
    "IntegrationSpec",
    "check_schema",
    "merge_entry",
]
