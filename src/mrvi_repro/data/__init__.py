"""Datasets: simulation, readers, the semi-synthetic construction, preprocessing, the contract.

Names are loaded on first use (PEP 562), so that a light job (rule ``download``, which needs only
the standard library) does not pay for importing scanpy and JAX with the rest of the package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._download import (
        DOWNLOAD_DEFAULTS,
        LOCK_COLUMNS,
        ChecksumError,
        DownloadError,
        LockEntry,
        ManualDownloadRequired,
        RegistryError,
        Resource,
        fetch,
        file_digest,
        load_registry,
        manual_file,
        obtain,
        read_lock,
        write_lock,
    )
    from ._preprocess import (
        build_dataset,
        build_sciplex_screen,
        counts_to_x,
        drop_small_samples,
        preprocess_dataset,
        sample_table,
        select_hvgs,
    )
    from ._readers import (
        MTX_MEMBERS,
        ArchiveError,
        SchemaError,
        apply_subset,
        read_10x_mtx_tar,
        read_h5ad_counts,
        read_sample_metadata,
        read_scp_bundles,
        read_scp_metadata,
        read_source,
    )
    from ._recipes import (
        covid_covariates,
        deg_counts,
        ibd_covariates,
        read_cell_cycle_genes,
        read_plate_table,
        sciplex_cell_line,
        sciplex_plates,
        sciplex_screen,
    )
    from ._semisynthetic import SUBSETS, SemisyntheticParams, leiden_clusters, make_semisynthetic
    from ._simulate import PBMC_CELL_TYPES, SimulationParams, simulate_base
    from ._spec import (
        AUTO_COUNTS,
        DEFAULT_MATRIX_DIR,
        RECIPE_KINDS,
        SCIPLEX_CELL_LINES,
        SOURCE_KINDS,
        AnalysisSpec,
        BaselinesSpec,
        CompositionSpec,
        CovidRecipe,
        DatasetSpec,
        DESeq2Spec,
        DESpec,
        DistancesSpec,
        H5adSource,
        HVGParams,
        IbdRecipe,
        MiloDESpec,
        MiloSpec,
        MrVISpec,
        PCASpec,
        SampleMetadataSpec,
        SciplexRecipe,
        SciplexScreen,
        ScpBundlesSource,
        SCVISpec,
        SpecError,
        StratifySpec,
        SubsetSpec,
        TenxMtxTarSource,
        check_schema,
    )
    from ._validate import DataContractError, count_problems, per_sample, validate_adata

#: Public name -> submodule that defines it.
_SUBMODULE = {
    "AUTO_COUNTS": "._spec",
    "AnalysisSpec": "._spec",
    "ArchiveError": "._readers",
    "BaselinesSpec": "._spec",
    "ChecksumError": "._download",
    "CompositionSpec": "._spec",
    "CovidRecipe": "._spec",
    "DEFAULT_MATRIX_DIR": "._spec",
    "DESeq2Spec": "._spec",
    "DESpec": "._spec",
    "DOWNLOAD_DEFAULTS": "._download",
    "DataContractError": "._validate",
    "DatasetSpec": "._spec",
    "DistancesSpec": "._spec",
    "DownloadError": "._download",
    "H5adSource": "._spec",
    "HVGParams": "._spec",
    "IbdRecipe": "._spec",
    "LOCK_COLUMNS": "._download",
    "LockEntry": "._download",
    "MTX_MEMBERS": "._readers",
    "ManualDownloadRequired": "._download",
    "MiloDESpec": "._spec",
    "MiloSpec": "._spec",
    "MrVISpec": "._spec",
    "PBMC_CELL_TYPES": "._simulate",
    "PCASpec": "._spec",
    "RECIPE_KINDS": "._spec",
    "RegistryError": "._download",
    "Resource": "._download",
    "SCIPLEX_CELL_LINES": "._spec",
    "SCVISpec": "._spec",
    "SOURCE_KINDS": "._spec",
    "SUBSETS": "._semisynthetic",
    "SampleMetadataSpec": "._spec",
    "SchemaError": "._readers",
    "SciplexRecipe": "._spec",
    "SciplexScreen": "._spec",
    "ScpBundlesSource": "._spec",
    "SemisyntheticParams": "._semisynthetic",
    "SimulationParams": "._simulate",
    "SpecError": "._spec",
    "StratifySpec": "._spec",
    "SubsetSpec": "._spec",
    "TenxMtxTarSource": "._spec",
    "apply_subset": "._readers",
    "build_dataset": "._preprocess",
    "build_sciplex_screen": "._preprocess",
    "check_schema": "._spec",
    "count_problems": "._validate",
    "counts_to_x": "._preprocess",
    "covid_covariates": "._recipes",
    "deg_counts": "._recipes",
    "drop_small_samples": "._preprocess",
    "fetch": "._download",
    "file_digest": "._download",
    "ibd_covariates": "._recipes",
    "leiden_clusters": "._semisynthetic",
    "load_registry": "._download",
    "make_semisynthetic": "._semisynthetic",
    "manual_file": "._download",
    "obtain": "._download",
    "per_sample": "._validate",
    "preprocess_dataset": "._preprocess",
    "read_10x_mtx_tar": "._readers",
    "read_cell_cycle_genes": "._recipes",
    "read_h5ad_counts": "._readers",
    "read_lock": "._download",
    "read_plate_table": "._recipes",
    "read_sample_metadata": "._readers",
    "read_scp_bundles": "._readers",
    "read_scp_metadata": "._readers",
    "read_source": "._readers",
    "sample_table": "._preprocess",
    "sciplex_cell_line": "._recipes",
    "sciplex_plates": "._recipes",
    "sciplex_screen": "._recipes",
    "select_hvgs": "._preprocess",
    "simulate_base": "._simulate",
    "validate_adata": "._validate",
    "write_lock": "._download",
}


def __getattr__(name: str) -> Any:
    try:
        module = _SUBMODULE[name]
    except KeyError:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg) from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBMODULE])


__all__ = sorted(_SUBMODULE)
