"""mrvi-repro: reproduce the MrVI paper end to end and run its analyses on new cohorts.

Subpackages are floors that follow the data flow, each importing only the floors below it:
:mod:`~mrvi_repro.settings` (typed settings and shared names), :mod:`~mrvi_repro.data` (downloads,
readers, recipes, preprocessing, the AnnData contract, simulation), :mod:`~mrvi_repro.model`
(MrVI, scVI), :mod:`~mrvi_repro.analysis` and :mod:`~mrvi_repro.baselines`,
:mod:`~mrvi_repro.metrics`, :mod:`~mrvi_repro.plotting`; on top, :mod:`~mrvi_repro.pipeline` (dataset
entries and the stages as an entry drives them) and :mod:`~mrvi_repro.testing` (stand-ins of the
published files).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mrvi-repro")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
