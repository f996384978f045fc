"""Small Flax building blocks of MrVI and scVI.

Layer-level facts follow the reference implementation, the JAX MrVI of scvi-tools
(scverse/scvi-tools, ``src/scvi/external/mrvi/_components.py`` and ``_module.py``, before its JAX
backend was removed): ResNet blocks with LayerNorm, a sample-conditional normalisation in the
encoder (LayerNorm without learned scale and bias, then a per-sample affine), and the attention
block that mixes a latent state with a sample or batch embedding through 16 one-dimensional
"tokens" (2 heads, 4 channels). Initialisation as the reference's, layer by layer: its own
``Dense`` (MLPs, encoder) has PyTorch's default scale (:data:`DENSE_INIT`: variance scaling 1/3,
fan-in, uniform); the layers it takes from Flax as they are (the attention's token projections and
multi-head attention, the linear u -> z_base map, the decoder's output layer) keep Flax's LeCun
normal (:data:`FLAX_INIT`), three times the variance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

#: PyTorch's default Linear initialisation expressed as a variance scaling.
DENSE_INIT = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
#: Flax's default kernel initialisation (LeCun normal: variance 1 / fan_in).
FLAX_INIT = nn.initializers.lecun_normal()
#: Kernel initialisation of the attention projections, u -> z_base and the decoder's output layer,
#: by ``MrVIConfig.init_scheme``.
INIT_SCHEMES = {"reference": FLAX_INIT, "pytorch": DENSE_INIT}
#: Initialisation of sample and batch embeddings.
EMBED_INIT = nn.initializers.normal(0.1)

Activation = Callable[[jax.Array], jax.Array]


def Dense(features: int, **kwargs: Any) -> nn.Dense:
    """Dense layer with the PyTorch-default kernel initialisation."""
    return nn.Dense(features, kernel_init=DENSE_INIT, **kwargs)


class ResnetBlock(nn.Module):
    """Dense -> LayerNorm -> activation, plus a skip connection, then Dense -> LayerNorm -> activation.

    Attributes
    ----------
    n_out
        Output width.
    n_hidden
        Width of the inner layer (the skip is projected to it when the input width differs).
    activation
        Non-linearity.
    """

    n_out: int
    n_hidden: int = 128
    activation: Activation = nn.relu

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.activation(nn.LayerNorm()(Dense(self.n_hidden)(x)))
        skip = x if x.shape[-1] == self.n_hidden else Dense(self.n_hidden)(x)
        h = h + skip
        return self.activation(nn.LayerNorm()(Dense(self.n_out)(h)))


class MLP(nn.Module):
    """``n_layers`` ResNet blocks with output width ``n_hidden``, then a Dense output layer.

    As in the reference, each block's inner layer keeps the block's own width (``n_inner``, 128)
    whatever ``n_hidden`` is: the attention MLPs (``n_hidden`` 32) widen to 128 inside each block.
    """

    n_out: int
    n_hidden: int = 128
    n_layers: int = 1
    activation: Activation = nn.relu
    n_inner: int = 128

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for _ in range(self.n_layers):
            x = ResnetBlock(self.n_hidden, self.n_inner, self.activation)(x)
        return Dense(self.n_out)(x)


class NormalOutput(nn.Module):
    """ResNet blocks, then the mean and scale (softplus + 1e-5) of a diagonal Gaussian."""

    n_out: int
    n_hidden: int = 128
    n_layers: int = 2

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        for _ in range(self.n_layers):
            x = ResnetBlock(self.n_hidden, self.n_hidden)(x)
        mean = Dense(self.n_out)(x)
        scale = nn.softplus(Dense(self.n_out)(x)) + 1e-5
        return mean, scale


class ConditionalNormalization(nn.Module):
    """LayerNorm without its own affine, followed by a per-condition scale and shift.

    The scale embedding starts at N(1, 0.02), the shift at 0.
    """

    n_features: int
    n_conditions: int

    @nn.compact
    def __call__(self, x: jax.Array, condition: jax.Array) -> jax.Array:
        x = nn.LayerNorm(use_scale=False, use_bias=False)(x)
        gamma = nn.Embed(
            self.n_conditions,
            self.n_features,
            embedding_init=lambda k, s, d=jnp.float32: 1.0 + 0.02 * jax.random.normal(k, s, d),
        )(condition)
        beta = nn.Embed(self.n_conditions, self.n_features, embedding_init=nn.initializers.zeros)(
            condition
        )
        return gamma * x + beta


class AttentionBlock(nn.Module):
    """Multi-head attention of a latent state (query) on an embedding (keys/values), then an MLP.

    1. The query and the embedding are each projected to ``outerprod_dim`` tokens of width 1.
    2. Multi-head dot-product attention (``n_heads`` heads, ``n_channels`` output channels per
       token) of the query tokens on the embedding tokens; the result is flattened.
    3. An MLP maps it to ``outerprod_dim`` features; a second MLP maps the concatenation of the
       query and those features to ``out_dim``.

    With ``stop_gradients_mlp`` the query's gradient is stopped in the token projection only (the
    concatenation in step 3 still passes gradients), as in the reference.

    ``kernel_init`` initialises the token projections and the attention's own projections. The
    tokens have width 1, so each attention logit is a product of four of these weights and its
    scale goes with the square of their variance: with LeCun normal (Flax's default, the
    reference's) the logits start about 9 times larger than with PyTorch's default scale. With the
    latter the attention stayed nearly uniform through training (normalised entropy 0.99 on the
    semi-synthetic benchmark), so the sample features reached every cell state alike and sample
    effects leaked into cells that carry none (issue 16).
    """

    out_dim: int
    outerprod_dim: int = 16
    n_channels: int = 4
    n_heads: int = 2
    n_hidden_mlp: int = 32
    n_layers_mlp: int = 1
    dropout_rate: float = 0.03
    stop_gradients_mlp: bool = True
    activation: Activation = nn.gelu
    kernel_init: nn.initializers.Initializer = FLAX_INIT

    @nn.compact
    def __call__(self, query: jax.Array, kv: jax.Array, *, training: bool = False) -> jax.Array:
        q = jax.lax.stop_gradient(query) if self.stop_gradients_mlp else query
        tokens = (self.outerprod_dim, 1)
        q_tokens = nn.DenseGeneral(tokens, use_bias=False, kernel_init=self.kernel_init)(q)
        kv_tokens = nn.DenseGeneral(tokens, use_bias=False, kernel_init=self.kernel_init)(kv)
        attended = nn.MultiHeadDotProductAttention(
            num_heads=self.n_heads,
            qkv_features=self.n_channels * self.n_heads,
            out_features=self.n_channels,
            dropout_rate=self.dropout_rate,
            deterministic=not training,
            kernel_init=self.kernel_init,
        )(q_tokens, kv_tokens)
        flat = attended.reshape(*attended.shape[:-2], -1)
        eps = MLP(self.outerprod_dim, self.n_hidden_mlp, 1, self.activation)(flat)
        both = jnp.concatenate([query, eps], axis=-1)
        return MLP(self.out_dim, self.n_hidden_mlp, self.n_layers_mlp, self.activation)(both)
