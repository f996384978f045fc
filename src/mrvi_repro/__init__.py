"""mrvi-repro: reproduce the MrVI paper end to end and run its analyses on new cohorts.

Subpackages follow the data flow: :mod:`mrvi_repro.data` (simulation, semi-synthetic construction,
preprocessing and the AnnData contract), then the model, analyses, baselines, metrics and plots.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mrvi-repro")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
