"""The registry of a fitted model: how the AnnData columns map to its integer codes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import anndata as ad


@dataclass(frozen=True)
class Registry:
    """How AnnData columns map to the model's integer codes (fixed at fit time)."""

    sample_key: str | None
    batch_key: str | None
    labels_key: str | None
    samples: tuple[str, ...]
    batches: tuple[str, ...]
    labels: tuple[str, ...]
    genes: tuple[str, ...]

    @classmethod
    def from_adata(
        cls,
        adata: ad.AnnData,
        sample_key: str | None,
        batch_key: str | None,
        labels_key: str | None,
    ) -> Registry:
        """Categories of the keys in ``adata`` (sorted, as strings); a missing key gives one."""

        def cats(key: str | None) -> tuple[str, ...]:
            if key is None:
                return ("_all",)
            if key not in adata.obs.columns:
                msg = f"obs has no column {key!r}; columns are: {list(adata.obs.columns)}"
                raise KeyError(msg)
            return tuple(sorted(adata.obs[key].astype(str).unique()))

        return cls(
            sample_key,
            batch_key,
            labels_key,
            cats(sample_key),
            cats(batch_key),
            cats(labels_key),
            tuple(adata.var_names.astype(str)),
        )

    def codes(self, adata: ad.AnnData, kind: Literal["sample", "batch", "label"]) -> np.ndarray:
        """Integer codes of each cell's sample, batch or label; unknown categories are an error."""
        key, cats = {
            "sample": (self.sample_key, self.samples),
            "batch": (self.batch_key, self.batches),
            "label": (self.labels_key, self.labels),
        }[kind]
        if key is None:
            return np.zeros(adata.n_obs, dtype=np.int32)
        values = adata.obs[key].astype(str).to_numpy()
        codes = pd.Categorical(values, categories=cats).codes.astype(np.int32)
        if (codes < 0).any():
            unknown = sorted(set(values[codes < 0]))
            msg = f"obs[{key!r}] has {len(unknown)} value(s) the model was not fitted on: {unknown[:5]}"
            raise ValueError(msg)
        return codes

    def check_genes(self, adata: ad.AnnData) -> None:
        """Refuse data whose genes differ from the fitted ones (same names, same order)."""
        if tuple(adata.var_names.astype(str)) != self.genes:
            msg = (
                f"the data's {adata.n_vars} genes differ from the model's {len(self.genes)} genes "
                "(names and order must match the fitted data)"
            )
            raise ValueError(msg)
