"""Hyperparameters of the model and of training (defaults: the reference's).

Standard library only, so that a dataset entry can be parsed without importing JAX.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

PriorKind = Literal["mog", "isotropic", "celltype"]
InitScheme = Literal["reference", "pytorch"]


def _from_dict(cls: type, values: dict[str, Any] | None, what: str) -> Any:
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        msg = f"{what}: unknown key(s) {unknown}; allowed: {sorted(names)}"
        raise ValueError(msg)
    return cls(**values)


@dataclass(frozen=True)
class MrVIConfig:
    """Architecture of MrVI.

    Attributes
    ----------
    n_latent
        Dimension of z (sample-aware state).
    n_latent_u
        Dimension of u (sample-unaware state). When smaller than ``n_latent``, z's base is a
        linear map of u.
    encoder_n_hidden, encoder_n_layers
        Width of the encoder and number of ResNet blocks of its Gaussian head.
    encoder_sample_aware
        Condition the encoder on the sample (per-sample normalisation and an added sample
        embedding, as the reference code does): q(u | x, s). The default ``False`` is the paper's
        q(u | x) (Methods): on a small semi-synthetic dataset the sample-aware encoder makes cells
        group by sample in u even where samples do not differ (kNN same-sample enrichment 1.5-5.2x
        random), the paper's encoder does not (1.0-1.1), at the cost of a 0.2 % higher (worse)
        validation negative ELBO.
    prior
        Prior on u: ``"mog"`` (mixture of ``n_mixture`` full-dimensional diagonal Gaussians),
        ``"isotropic"`` (N(0, exp(u_prior_log_scale)^2 I)) or ``"celltype"`` (mixture with one component
        per cell-type label, the cell's own component's logit raised by ``celltype_logit_eps``).
    n_mixture
        Mixture components of the ``"mog"`` prior.
    u_prior_log_scale
        Log standard deviation of the isotropic prior.
    z_u_prior_log_scale
        Log standard deviation of the Gaussian penalty on z - z_base (the z-u prior).
    celltype_logit_eps
        Logit bonus of a cell's own label component in the cell-type-guided prior.
    n_latent_sample
        Width of sample and batch embeddings in the attention blocks.
    n_channels, n_heads, n_hidden_attention
        Attention block sizes (output channels per token, heads, MLP width).
    dropout_rate
        Dropout of the attention blocks.
    init_scheme
        Kernel initialisation of the attention blocks' projections, the linear u -> z_base map and
        the decoder's output layer. ``"reference"``: Flax's default (LeCun normal), which the
        reference keeps for these layers; every other layer has PyTorch's default scale as in the
        reference. ``"pytorch"``: PyTorch's default scale for them too (a third of the variance;
        the behaviour before issue 16: the attention's logits start about 9 times smaller, it
        stays nearly uniform through training and sample effects leak into cell states that
        carry none).
    """

    n_latent: int = 30
    n_latent_u: int = 10
    encoder_n_hidden: int = 128
    encoder_n_layers: int = 2
    encoder_sample_aware: bool = False
    prior: PriorKind = "mog"
    n_mixture: int = 20
    u_prior_log_scale: float = 0.0
    z_u_prior_log_scale: float = 0.0
    celltype_logit_eps: float = 10.0
    n_latent_sample: int = 16
    n_channels: int = 4
    n_heads: int = 2
    n_hidden_attention: int = 32
    dropout_rate: float = 0.03
    init_scheme: InitScheme = "reference"

    def __post_init__(self) -> None:
        if self.init_scheme not in ("reference", "pytorch"):
            msg = f"init_scheme must be 'reference' or 'pytorch' (got {self.init_scheme!r})"
            raise ValueError(msg)
        if self.prior not in ("mog", "isotropic", "celltype"):
            msg = f"prior must be 'mog', 'isotropic' or 'celltype' (got {self.prior!r})"
            raise ValueError(msg)
        if min(self.n_latent, self.n_latent_u, self.encoder_n_hidden, self.n_mixture) < 1:
            msg = "n_latent, n_latent_u, encoder_n_hidden and n_mixture must be >= 1"
            raise ValueError(msg)
        if self.n_latent < self.n_latent_u:
            msg = f"n_latent ({self.n_latent}) must be >= n_latent_u ({self.n_latent_u})"
            raise ValueError(msg)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> MrVIConfig:
        """Build from a mapping, rejecting unknown keys."""
        return _from_dict(cls, values, "model config")


@dataclass(frozen=True)
class SCVIConfig:
    """Architecture of scVI built from MrVI's parts (no sample level).

    q(z | x) is MrVI's encoder, p(z) = N(0, I), and the decoder is scVI's: one hidden layer on z
    and the one-hot batch, the batch injected again into the output layer, softmax over genes; NB
    with the observed library size and gene-wise inverse dispersion.

    Attributes
    ----------
    n_latent
        Dimension of z (scVI's default, 10).
    encoder_n_hidden, encoder_n_layers
        Width of the encoder and number of ResNet blocks of its Gaussian head.
    decoder_n_hidden
        Width of the decoder's hidden layer (scVI's default, 128).
    """

    n_latent: int = 10
    encoder_n_hidden: int = 128
    encoder_n_layers: int = 2
    decoder_n_hidden: int = 128

    def __post_init__(self) -> None:
        if min(self.n_latent, self.encoder_n_hidden) < 1:
            msg = "n_latent and encoder_n_hidden must be >= 1"
            raise ValueError(msg)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> SCVIConfig:
        """Build from a mapping, rejecting unknown keys."""
        return _from_dict(cls, values, "scVI config")


@dataclass(frozen=True)
class TrainConfig:
    """Training schedule.

    Attributes
    ----------
    max_epochs
        Epochs at most; ``None`` uses the reference's heuristic min(round(20000 / n_cells * 400), 400).
    batch_size
        Cells per minibatch.
    lr, weight_decay, adam_eps, max_grad_norm
        Adam with coupled weight decay and global-norm gradient clipping.
    n_epochs_kl_warmup
        The KL weight grows linearly from 0 to 1 over these epochs (epoch / n).
    train_size
        Fraction of cells used for training; the rest is the validation set.
    early_stopping, patience
        Stop when the validation negative ELBO (``val_neg_elbo`` of the history, lower is
        better) has not decreased for ``patience`` epochs (so ``train_size`` 1.0, no validation
        set, needs ``early_stopping=False``).
    restore_best
        With a validation set, keep the parameters of the epoch with the lowest validation
        negative ELBO (``False``: the last epoch's, as the reference does).
    checkpoint_every
        With a checkpoint folder (the workflow's fit rules have one), write the training state
        every this many epochs, so that a killed fit resumes there (0: only on SIGTERM/SIGINT,
        which always write one at the end of the running epoch).
    max_dense_gib
        Largest dense copy of the counts (cells x genes float32), in GiB, that training puts on
        the device. Data up to it sits on the device whole and an epoch is one kernel; above it,
        the counts stay on the host as they are (sparse) and minibatches are densified a chunk
        at a time and streamed to the device: the same steps with the same numbers, with memory
        bounded by the chunk instead of cells x genes. ``0`` always streams, ``None`` never does.
    """

    max_epochs: int | None = None
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-8
    adam_eps: float = 1e-8
    max_grad_norm: float = 40.0
    n_epochs_kl_warmup: int = 20
    train_size: float = 0.9
    early_stopping: bool = True
    patience: int = 15
    max_dense_gib: float | None = 2.0
    restore_best: bool = True
    checkpoint_every: int = 10

    def __post_init__(self) -> None:
        if self.checkpoint_every < 0:
            msg = f"checkpoint_every must be >= 0 (got {self.checkpoint_every})"
            raise ValueError(msg)
        if self.max_dense_gib is not None and not self.max_dense_gib >= 0.0:
            msg = f"max_dense_gib must be >= 0 or None (got {self.max_dense_gib})"
            raise ValueError(msg)
        if not 0.0 < self.train_size <= 1.0:
            msg = f"train_size must lie in (0, 1] (got {self.train_size})"
            raise ValueError(msg)
        if self.train_size == 1.0 and self.early_stopping:
            msg = (
                "train_size 1.0 leaves no validation cells, and early_stopping watches the "
                "validation ELBO: set early_stopping to false (training then runs max_epochs "
                "epochs) or train_size below 1 (e.g. 0.9)"
            )
            raise ValueError(msg)
        if self.batch_size < 1 or (self.max_epochs is not None and self.max_epochs < 1):
            msg = "batch_size and max_epochs must be >= 1"
            raise ValueError(msg)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> TrainConfig:
        """Build from a mapping, rejecting unknown keys."""
        return _from_dict(cls, values, "train config")

    def n_train(self, n_cells: int) -> int:
        """Return the number of training cells of a seeded ``train_size`` split of ``n_cells``."""
        if self.train_size >= 1.0:
            return n_cells
        return max(1, min(n_cells - 1, round(self.train_size * n_cells)))

    def epochs_for(self, n_cells: int) -> int:
        """Return the number of epochs to run for a dataset of ``n_cells`` cells."""
        if self.max_epochs is not None:
            return self.max_epochs
        return max(1, min(round(20_000 / n_cells * 400), 400))

    def streams(self, n_cells: int, n_genes: int) -> bool:
        """Return whether training on ``n_cells x n_genes`` streams minibatches from the host."""
        if self.max_dense_gib is None:
            return False
        return n_cells * n_genes * 4 > self.max_dense_gib * 1024**3
