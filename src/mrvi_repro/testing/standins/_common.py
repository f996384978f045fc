"""What the stand-in writers share: a pool of simulated cells, planted effects, the truth files."""

from __future__ import annotations

import io
import json
import math
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.io
from scipy import sparse

from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.settings.data import SimulationParams

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: Truth file of each stand-in dataset, relative to the root the writers write under.
TRUTH_FILES = {
    "pbmc68k": "pbmc68k/standin_truth.json",
    "covid": "covid/haniffa21.standin_truth.json",
    "sciplex": "sciplex/standin_truth.json",
    "ibd": "ibd/standin_truth.json",
}


@dataclass
class CellPool:
    """Cells simulated by :func:`~mrvi_repro.data.simulate.simulate_base`, drawn without repeats.

    Attributes
    ----------
    counts
        Integer counts, cells x genes (dense; the stand-ins are small).
    cell_type
        Simulated cell-type code of each cell (the order of ``type_names``).
    substate
        Sub-state index of each cell within its type (0-based).
    type_names
        The simulator's cell-type names.
    profile
        Per cell type, the mean share of each gene in a cell's counts (types x genes): the
        expression a planted fold change multiplies.
    """

    counts: np.ndarray
    cell_type: np.ndarray
    substate: np.ndarray
    type_names: list[str]
    profile: np.ndarray
    _order: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _next: dict[int, int] = field(default_factory=dict, repr=False)

    def take(self, type_code: int, n: int) -> np.ndarray:
        """Take ``n`` cells of one type not taken before (in the pool's shuffled order): indices."""
        start = self._next.get(type_code, 0)
        order = self._order[type_code]
        if start + n > order.size:
            msg = f"the pool has {order.size} cells of {self.type_names[type_code]!r}, {start + n} needed"
            raise ValueError(msg)
        self._next[type_code] = start + n
        return order[start : start + n]


def simulate_pool(
    need: Sequence[int],
    *,
    n_genes: int,
    seed: int,
    n_substates: int = 3,
    n_programs: int = 3,
    median_library_size: float = 2500.0,
) -> CellPool:
    """Simulate enough cells that every type ``t`` has at least ``need[t]`` cells.

    One :func:`~mrvi_repro.data.simulate.simulate_base` call with ``len(need)`` cell types (its
    PBMC-like types first, then generic ones) and one sample; the run is repeated with more cells
    (same seed) until every type has enough, so the result depends only on the arguments.
    """
    need_arr = np.asarray(need, dtype=float)
    n_cells = max(200, int(2 * need_arr.sum()))
    for _ in range(8):
        base = simulate_base(
            SimulationParams(
                n_cells=n_cells,
                n_genes=n_genes,
                n_cell_types=len(need_arr),
                n_substates=n_substates,
                n_programs=n_programs,
                n_samples=1,
                median_library_size=median_library_size,
                seed=seed,
            )
        )
        codes = base.obs["cell_type"].cat.codes.to_numpy()
        have = np.bincount(codes, minlength=len(need_arr))
        if (have >= need_arr).all():
            break
        n_cells = math.ceil(n_cells * float(np.max(need_arr / np.maximum(have, 1))) * 1.2)
    else:  # pragma: no cover - the loop grows the pool geometrically
        msg = f"could not simulate {need_arr.astype(int).tolist()} cells per type"
        raise RuntimeError(msg)
    counts = np.asarray(base.X.todense()).astype(np.int64)
    substate = base.obs["substate"].astype(str).str.rsplit(":", n=1).str[1].astype(int) - 1
    lib = counts.sum(axis=1, keepdims=True).clip(min=1)
    share = counts / lib
    profile = np.stack(
        [
            share[codes == t].mean(axis=0) if (codes == t).any() else np.zeros(n_genes)
            for t in range(len(need_arr))
        ]
    )
    rng = np.random.default_rng([seed, 17])
    order = {t: rng.permutation(np.flatnonzero(codes == t)) for t in range(len(need_arr))}
    return CellPool(
        counts=counts,
        cell_type=codes,
        substate=substate.to_numpy(),
        type_names=list(base.obs["cell_type"].cat.categories),
        profile=profile,
        _order=order,
    )


def scale_expression(
    counts: np.ndarray,
    expected_share: np.ndarray,
    rows: np.ndarray,
    genes: Sequence[int],
    fold: float | np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Multiply the expected counts of ``genes`` in ``rows`` of ``counts`` by ``fold``, in place.

    A fold above 1 adds Poisson counts with mean ``(fold - 1) x`` the expected count (the cell's
    library size times ``expected_share``, its type's mean share of the gene); a fold below 1 thins
    the counts binomially. Either way the expected count becomes ``fold`` times what it was.
    ``fold`` may be a scalar or one value per row.
    """
    rows = np.asarray(rows)
    genes = np.asarray(genes)
    if rows.size == 0 or genes.size == 0:
        return
    fold_arr = np.broadcast_to(np.asarray(fold, dtype=float), rows.shape)[:, None]
    block = counts[np.ix_(rows, genes)]
    lib = counts[rows].sum(axis=1, keepdims=True)
    mean = lib * expected_share[np.ix_(rows, genes)]
    up = np.broadcast_to(fold_arr > 1, block.shape)
    extra = rng.poisson(np.where(up, (fold_arr - 1) * mean, 0.0))
    kept = rng.binomial(block, np.where(up, 1.0, np.minimum(fold_arr, 1.0)))
    counts[np.ix_(rows, genes)] = kept + extra


def pick_genes(
    expression: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    exclude: set[int],
    band: tuple[float, float] = (0.05, 0.5),
) -> list[int]:
    """``n`` genes drawn among those whose ``expression`` ranks within ``band`` (from the top).

    Planted programs use well-expressed genes (not the few highest), so that their fold changes
    show in a few dozen cells; genes in ``exclude`` are skipped and the chosen ones added to it.
    """
    ranked = [int(g) for g in np.argsort(-expression, kind="stable") if int(g) not in exclude]
    lo, hi = (round(b * expression.size) for b in band)
    candidates = ranked[lo:hi] if hi - lo >= n else ranked[: max(n, hi)]
    chosen = sorted(int(g) for g in rng.choice(candidates, size=n, replace=False))
    exclude.update(chosen)
    return chosen


def spread_sizes(mean: int, n: int, rng: np.random.Generator, *, low: int) -> np.ndarray:
    """``n`` distinct sizes around ``mean`` (two apart, shuffled), none below ``low``."""
    sizes = max(low, mean - n) + 2 * np.arange(n)
    return rng.permutation(sizes)


def barcodes(n: int, rng: np.random.Generator, length: int = 16) -> list[str]:
    """``n`` distinct random nucleotide barcodes."""
    seen: set[str] = set()
    out = []
    while len(out) < n:
        code = "".join(rng.choice(list("ACGT"), size=length))
        if code not in seen:
            seen.add(code)
            out.append(code)
    return out


def shares_with(
    base: Mapping[str, float], factors: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Shares of ``base`` with some labels' odds multiplied by ``factors``, renormalised."""
    factors = factors or {}
    raw = {k: v * factors.get(k, 1.0) for k, v in base.items()}
    total = sum(raw.values())
    return {k: v / total for k, v in raw.items()}


def draw_composition(
    shares: Mapping[str, float], n: int, rng: np.random.Generator, *, concentration: float
) -> dict[str, int]:
    """Cell counts per label for one sample: Dirichlet(concentration x shares), then multinomial."""
    labels = list(shares)
    p = rng.dirichlet(concentration * np.array([shares[k] for k in labels]))
    return dict(zip(labels, rng.multinomial(n, p).tolist(), strict=True))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    msg = f"cannot write {type(value).__name__} to JSON"
    raise TypeError(msg)


def write_truth(root: str | Path, dataset: str, truth: Mapping[str, Any]) -> Path:
    """Write a dataset's truth as JSON at ``root / TRUTH_FILES[dataset]``."""
    path = Path(root) / TRUTH_FILES[dataset]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(truth, indent=1, default=_json_default) + "\n")
    return path


def read_standin_truth(root: str | Path, dataset: str) -> dict[str, Any]:
    """Read the planted truth a stand-in writer stored beside its files.

    Parameters
    ----------
    root
        The folder the writer wrote under (the one given to :func:`write_standins`).
    dataset
        ``pbmc68k``, ``covid``, ``sciplex`` or ``ibd``.

    Returns
    -------
    The truth as written (see the writers' docstrings for the layout).

    Raises
    ------
    KeyError
        For an unknown dataset.
    FileNotFoundError
        If the dataset's stand-in was not written under ``root``.
    """
    if dataset not in TRUTH_FILES:
        msg = f"no stand-in dataset {dataset!r}; known: {sorted(TRUTH_FILES)}"
        raise KeyError(msg)
    return json.loads((Path(root) / TRUTH_FILES[dataset]).read_text())


def write_10x_archive(
    path: str | Path,
    counts: Any,
    gene_ids: Sequence[str],
    symbols: Sequence[str],
    barcodes: Sequence[str],
    *,
    matrix_dir: str | None = None,
    skip: Sequence[str] = (),
) -> str | Path:
    """Write a Cell Ranger 1.x matrix archive as 10x publishes PBMC 68k (its download's stand-in).

    Folders ``filtered_matrices_mex/hg19/`` (or ``matrix_dir``) holding plain ``matrix.mtx``
    (integer, genes x cells, from ``counts``: cells x genes, sparse), ``genes.tsv`` (Ensembl ID,
    symbol; no header) and ``barcodes.tsv``; files named in ``skip`` are left out.
    """
    matrix_dir = matrix_dir or "filtered_matrices_mex/hg19"
    files = {
        "matrix.mtx": mtx_bytes(counts.T),
        "genes.tsv": "".join(
            f"{g}\t{s}\n" for g, s in zip(gene_ids, symbols, strict=True)
        ).encode(),
        "barcodes.tsv": "".join(f"{b}\n" for b in barcodes).encode(),
    }
    with tarfile.open(path, "w:gz") as tar:
        parts = matrix_dir.split("/")
        for i in range(1, len(parts) + 1):
            info = tarfile.TarInfo("/".join(parts[:i]) + "/")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in files.items():
            if name in skip:
                continue
            info = tarfile.TarInfo(f"{matrix_dir}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def mtx_bytes(matrix: Any) -> bytes:
    """MatrixMarket coordinate text of an integer matrix (``scipy.io.mmwrite``)."""
    out = io.BytesIO()
    scipy.io.mmwrite(out, sparse.coo_matrix(matrix).astype(np.int64))
    return out.getvalue()
