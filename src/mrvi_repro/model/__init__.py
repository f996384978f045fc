"""MrVI and scVI in JAX/Flax/Optax: the modules, their training and the fitted-model API.

Importing it turns on the persistent compilation cache named by ``MRVI_REPRO_JAX_CACHE``
(:func:`mrvi_repro._jax_cache.configure_compile_cache`; the workflow sets it).
"""

import warnings

from mrvi_repro._jax_cache import configure_compile_cache
from mrvi_repro.settings.model import MrVIConfig, SCVIConfig, TrainConfig

from ._checkpoint import TrainingInterrupted
from ._likelihoods import log_factorial, nb_log_prob
from ._model import MrVI
from ._module import SCVAE, MrVAE
from ._outputs import embedding_anndata, latent_anndata, write_model
from ._registry import Registry
from ._scvi import SCVI
from ._training import make_optimizer

try:
    configure_compile_cache()
except ValueError as _err:  # a bad MRVI_REPRO_JAX_CACHE_MAX_GIB must not break every import
    warnings.warn(f"persistent compilation cache left off: {_err}", stacklevel=1)

__all__ = [
    "MrVAE",
    "MrVI",
    "MrVIConfig",
    "Registry",
    "SCVAE",
    "SCVI",
    "SCVIConfig",
    "TrainConfig",
    "TrainingInterrupted",
    "embedding_anndata",
    "latent_anndata",
    "log_factorial",
    "make_optimizer",
    "nb_log_prob",
    "write_model",
]
