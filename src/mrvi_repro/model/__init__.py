"""MrVI in JAX/Flax/Optax: the module, its training and the fitted-model API."""

from ._config import MrVIConfig, TrainConfig
from ._model import MrVI, Registry, log_factorial, make_optimizer
from ._module import MrVAE, nb_log_prob

__all__ = [
    "MrVAE",
    "MrVI",
    "MrVIConfig",
    "Registry",
    "TrainConfig",
    "log_factorial",
    "make_optimizer",
    "nb_log_prob",
]
