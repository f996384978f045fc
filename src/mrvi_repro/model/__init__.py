"""MrVI and scVI in JAX/Flax/Optax: the modules, their training and the fitted-model API."""

from ._base import Registry, log_factorial, make_optimizer
from ._config import MrVIConfig, SCVIConfig, TrainConfig
from ._model import MrVI
from ._module import SCVAE, MrVAE, nb_log_prob
from ._scvi import SCVI
from ._workflow import (
    LATENT_KEYS,
    embedding_anndata,
    fit_mrvi,
    fit_scvi,
    latent_anndata,
    write_model,
)

__all__ = [
    "LATENT_KEYS",
    "MrVAE",
    "MrVI",
    "MrVIConfig",
    "Registry",
    "SCVAE",
    "SCVI",
    "SCVIConfig",
    "TrainConfig",
    "embedding_anndata",
    "fit_mrvi",
    "fit_scvi",
    "latent_anndata",
    "log_factorial",
    "make_optimizer",
    "nb_log_prob",
    "write_model",
]
