"""The MrVI generative model and its variational approximation as one Flax module.

Paper, Methods "The MrVI model": u_n ~ p(u) (mixture of Gaussians), z_n = A u_n + eps_n with eps_n
produced by attention of u on the sample s_n (penalised by a Gaussian prior), and
x_ng ~ NB(l_n h_ng, theta_g) with h_n = softmax(W(z_n + attention(z_n, b_n))). Inference: q(u | x)
is a Gaussian from an MLP (optionally sample-conditional, as in the reference); z given u and s is
deterministic.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from mrvi_repro.settings.model import MrVIConfig, SCVIConfig

from ._components import (
    EMBED_INIT,
    INIT_SCHEMES,
    AttentionBlock,
    ConditionalNormalization,
    Dense,
    NormalOutput,
)
from ._likelihoods import nb_log_prob

_LOG_2PI = float(jnp.log(2 * jnp.pi))


def normal_log_prob(x: jax.Array, mean: jax.Array, log_scale: jax.Array) -> jax.Array:
    """Elementwise log density of N(mean, exp(log_scale)^2)."""
    return -0.5 * ((x - mean) * jnp.exp(-log_scale)) ** 2 - log_scale - 0.5 * _LOG_2PI


class EncoderXU(nn.Module):
    """q(u | x): log1p counts, two Dense + LayerNorm + GELU, then a Gaussian head.

    With ``sample_aware`` the norms are sample-conditional and a sample embedding is added, as in
    the reference: q(u | x, s). That lets sample identity into u (see ``MrVIConfig``).
    """

    n_latent_u: int
    n_samples: int
    n_hidden: int = 128
    n_layers: int = 2
    sample_aware: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, sample: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = jnp.log1p(x)
        for _ in range(2):
            h = Dense(self.n_hidden)(h)
            if self.sample_aware:
                h = ConditionalNormalization(self.n_hidden, self.n_samples)(h, sample)
            else:
                h = nn.LayerNorm()(h)
            h = nn.gelu(h)
        if self.sample_aware:
            h = h + nn.Embed(self.n_samples, self.n_hidden, embedding_init=EMBED_INIT)(sample)
        return NormalOutput(self.n_latent_u, self.n_hidden, self.n_layers)(h)


class EmbeddingAttention(nn.Module):
    """Attention of LayerNorm(state) on the LayerNorm-ed embedding of a category (sample or batch).

    The output has ``config.n_latent`` features; a category per cell is broadcast over any leading
    Monte-Carlo axis of the state.
    """

    config: MrVIConfig
    n_categories: int

    @nn.compact
    def __call__(
        self, state: jax.Array, category: jax.Array, *, training: bool = False
    ) -> jax.Array:
        c = self.config
        embed = nn.Embed(self.n_categories, c.n_latent_sample, embedding_init=EMBED_INIT)(category)
        embed = nn.LayerNorm()(embed)
        if embed.ndim < state.ndim:
            embed = jnp.broadcast_to(embed, (*state.shape[:-1], embed.shape[-1]))
        return AttentionBlock(
            out_dim=c.n_latent,
            outerprod_dim=c.n_latent_sample,
            n_channels=c.n_channels,
            n_heads=c.n_heads,
            n_hidden_mlp=c.n_hidden_attention,
            dropout_rate=c.dropout_rate,
            kernel_init=INIT_SCHEMES[c.init_scheme],
        )(nn.LayerNorm()(state), embed, training=training)


class EncoderUZ(nn.Module):
    """u, s -> (z_base, eps): eps from attention of LayerNorm(u) on the sample embedding.

    z_base is a linear map of the raw u when z is wider than u (the identity otherwise).
    """

    config: MrVIConfig
    n_samples: int

    @nn.compact
    def __call__(
        self, u: jax.Array, sample: jax.Array, *, training: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        c = self.config
        eps = EmbeddingAttention(c, self.n_samples)(u, sample, training=training)
        init = INIT_SCHEMES[c.init_scheme]
        z_base = nn.Dense(c.n_latent, kernel_init=init)(u) if c.n_latent != c.n_latent_u else u
        return z_base, eps


class DecoderZX(nn.Module):
    """z, b -> log h (log of the gene proportions); attention on the batch embedding if n_batches > 1."""

    config: MrVIConfig
    n_genes: int
    n_batches: int

    @nn.compact
    def __call__(self, z: jax.Array, batch: jax.Array, *, training: bool = False) -> jax.Array:
        c = self.config
        output = nn.Dense(self.n_genes, kernel_init=INIT_SCHEMES[c.init_scheme])
        if self.n_batches > 1:
            residual = EmbeddingAttention(c, self.n_batches)(z, batch, training=training)
            logits = output(z + residual)
        else:
            logits = output(nn.LayerNorm()(z))
        return jax.nn.log_softmax(logits, axis=-1)


class MrVAE(nn.Module):
    """MrVI: encoder, u -> z map, decoder, priors and the per-cell loss terms.

    Attributes
    ----------
    config
        Architecture.
    n_genes, n_samples, n_batches, n_labels
        Sizes of the data (``n_labels`` is used by the cell-type-guided prior only).
    """

    config: MrVIConfig
    n_genes: int
    n_samples: int
    n_batches: int = 1
    n_labels: int = 1

    def setup(self) -> None:
        c = self.config
        self.qu = EncoderXU(
            c.n_latent_u,
            self.n_samples,
            c.encoder_n_hidden,
            c.encoder_n_layers,
            c.encoder_sample_aware,
        )
        self.qz = EncoderUZ(c, self.n_samples)
        self.px = DecoderZX(c, self.n_genes, self.n_batches)
        self.px_log_theta = self.param("px_log_theta", nn.initializers.normal(1.0), (self.n_genes,))
        k = self.n_components
        self.u_prior_logits = self.param("u_prior_logits", nn.initializers.zeros, (k,))
        self.u_prior_means = self.param(
            "u_prior_means", nn.initializers.normal(1.0), (k, c.n_latent_u)
        )
        self.u_prior_log_scales = self.param(
            "u_prior_log_scales", nn.initializers.zeros, (k, c.n_latent_u)
        )

    @property
    def n_components(self) -> int:
        """Mixture components of the prior on u (1 for the isotropic prior)."""
        c = self.config
        return {"mog": c.n_mixture, "celltype": self.n_labels, "isotropic": 1}[c.prior]

    def encode(self, x: jax.Array, sample: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Mean and standard deviation of q(u | x, s)."""
        return self.qu(x, sample)

    def z_parts(
        self, u: jax.Array, sample: jax.Array, training: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        """z_base and eps for u under sample(s) ``sample``; z = z_base + eps."""
        return self.qz(u, sample, training=training)

    def log_h(self, z: jax.Array, batch: jax.Array, training: bool = False) -> jax.Array:
        """Log gene proportions (log of the decoder's softmax) for z in nuisance batch ``batch``."""
        return self.px(z, batch, training=training)

    def u_prior_log_prob(self, u: jax.Array, label: jax.Array | None = None) -> jax.Array:
        """Log p(u): the full-dimensional mixture (or isotropic Gaussian), summed over dimensions."""
        c = self.config
        if c.prior == "isotropic":
            return normal_log_prob(u, 0.0, jnp.asarray(c.u_prior_log_scale)).sum(-1)
        logits = self.u_prior_logits
        if c.prior == "celltype":
            logits = logits + c.celltype_logit_eps * jax.nn.one_hot(label, self.n_components)
        log_w = jax.nn.log_softmax(logits, axis=-1)
        comp = normal_log_prob(u[..., None, :], self.u_prior_means, self.u_prior_log_scales).sum(-1)
        return logsumexp(log_w + comp, axis=-1)

    def __call__(
        self,
        x: jax.Array,
        sample: jax.Array,
        batch: jax.Array,
        label: jax.Array,
        *,
        training: bool = False,
    ) -> dict[str, jax.Array]:
        """Per-cell loss terms: ``reconstruction`` (-log NB without log x!), ``kl_u``, ``kl_z``.

        Uses the RNG stream ``"u"`` (reparameterised sample of u) and ``"dropout"`` when training.
        """
        mean, scale = self.encode(x, sample)
        u = mean + scale * jax.random.normal(self.make_rng("u"), mean.shape)
        z_base, eps = self.z_parts(u, sample, training)
        log_h = self.log_h(z_base + eps, batch, training)
        library = jnp.log(x.sum(-1, keepdims=True))
        reconstruction = -nb_log_prob(x, log_h + library, self.px_log_theta)
        log_q = normal_log_prob(u, mean, jnp.log(scale)).sum(-1)
        kl_u = log_q - self.u_prior_log_prob(u, label)
        kl_z = -normal_log_prob(eps, 0.0, jnp.asarray(self.config.z_u_prior_log_scale)).sum(-1)
        return {"reconstruction": reconstruction, "kl_u": kl_u, "kl_z": kl_z}


class DecoderSCVI(nn.Module):
    """scVI's decoder: z and the one-hot batch -> Dense + LayerNorm + ReLU -> log softmax over genes.

    The one-hot batch also enters the output layer (scVI's covariate injection), so a batch can
    shift every gene on its own; MrVI's low-dimensional batch attention cannot do that for a
    10-dimensional z.
    """

    n_genes: int
    n_batches: int
    n_hidden: int = 128

    @nn.compact
    def __call__(self, z: jax.Array, batch: jax.Array, *, training: bool = False) -> jax.Array:
        del training
        onehot = jax.nn.one_hot(batch, self.n_batches, dtype=z.dtype)
        h = nn.relu(nn.LayerNorm()(Dense(self.n_hidden)(jnp.concatenate([z, onehot], -1))))
        return jax.nn.log_softmax(Dense(self.n_genes)(jnp.concatenate([h, onehot], -1)), -1)


class SCVAE(nn.Module):
    """scVI from MrVI's parts: q(z | x) (MrVI's encoder), p(z) = N(0, I), scVI's decoder, NB.

    Called like :class:`MrVAE` (the sample and label codes are ignored); returns the per-cell terms
    ``reconstruction`` and ``kl_z`` (analytic). The latent draw uses the RNG stream ``"u"``.
    """

    config: SCVIConfig
    n_genes: int
    n_batches: int = 1

    def setup(self) -> None:
        c = self.config
        self.qz = EncoderXU(c.n_latent, 1, c.encoder_n_hidden, c.encoder_n_layers)
        self.px = DecoderSCVI(self.n_genes, self.n_batches, c.decoder_n_hidden)
        self.px_log_theta = self.param("px_log_theta", nn.initializers.normal(1.0), (self.n_genes,))

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Mean and standard deviation of q(z | x)."""
        return self.qz(x, jnp.zeros(x.shape[:-1], dtype=jnp.int32))

    def log_h(self, z: jax.Array, batch: jax.Array, training: bool = False) -> jax.Array:
        """Log gene proportions for z in nuisance batch ``batch``."""
        return self.px(z, batch, training=training)

    def __call__(
        self,
        x: jax.Array,
        sample: jax.Array,
        batch: jax.Array,
        label: jax.Array,
        *,
        training: bool = False,
    ) -> dict[str, jax.Array]:
        """Per-cell loss terms: ``reconstruction`` (-log NB without log x!) and ``kl_z``."""
        del sample, label
        mean, scale = self.encode(x)
        z = mean + scale * jax.random.normal(self.make_rng("u"), mean.shape)
        library = jnp.log(x.sum(-1, keepdims=True))
        reconstruction = -nb_log_prob(
            x, self.log_h(z, batch, training) + library, self.px_log_theta
        )
        kl_z = (0.5 * (mean**2 + scale**2 - 1.0) - jnp.log(scale)).sum(-1)
        return {"reconstruction": reconstruction, "kl_z": kl_z}
