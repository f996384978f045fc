"""The package's floors: every import between subpackages runs downward, so there is no cycle.

The order is the README's ("Layout"): a module may import its own subpackage and any floor below
its own, never a floor above nor a peer on its floor. Type-checking-only imports count too. Also:
the workflow parses dataset entries at load time, so the entry and the download layer must import
without JAX, scanpy, anndata or plotnine.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mrvi_repro"

#: Floors from the bottom up; the units of one floor may not import each other.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("mrvi_repro", "mrvi_repro._logging", "mrvi_repro._jax_cache", "mrvi_repro.settings"),
    ("mrvi_repro._graph", "mrvi_repro._groups"),
    ("mrvi_repro.data",),
    ("mrvi_repro.model",),
    ("mrvi_repro.analysis", "mrvi_repro.baselines"),
    ("mrvi_repro.metrics",),
    ("mrvi_repro.plotting",),
    ("mrvi_repro.pipeline", "mrvi_repro.testing"),
)


def unit_of(module: str) -> str:
    """The floor unit a dotted module name belongs to (its longest listed prefix)."""
    units = [u for floor in FLOORS for u in floor]
    matches = [
        u for u in units if module == u or (u != "mrvi_repro" and module.startswith(u + "."))
    ]
    if not matches:
        msg = f"{module} is on no floor: add it to FLOORS (and to the README's Layout)"
        raise AssertionError(msg)
    return max(matches, key=len)


def floor_of(unit: str) -> int:
    return next(i for i, floor in enumerate(FLOORS) if unit in floor)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool) -> list[str]:
    """Every ``mrvi_repro`` module that ``source`` imports (absolute names, relative resolved)."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append(target)
            # `from mrvi_repro import data` imports a subpackage (not `__version__`)
            if target == "mrvi_repro":
                found += [f"mrvi_repro.{a.name}" for a in node.names if not a.name.startswith("__")]
    return [m for m in found if m == "mrvi_repro" or m.startswith("mrvi_repro.")]


def layer_violations(root: Path) -> list[str]:
    """``importer -> imported`` for every import that goes up a floor or across one."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        here = unit_of(module)
        for target in imported_modules(
            path.read_text(), module, is_package=path.name == "__init__.py"
        ):
            there = unit_of(target)
            if there == here:
                continue
            if floor_of(there) >= floor_of(here):
                bad.append(f"{module} -> {target}")
    return bad


def test_every_import_goes_down_a_floor():
    assert layer_violations(PACKAGE) == []


def test_the_check_catches_an_upward_and_a_sideways_import(tmp_path):
    root = tmp_path / "mrvi_repro"
    for sub in ("data", "model", "analysis", "baselines"):
        (root / sub).mkdir(parents=True)
        (root / sub / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "data" / "_x.py").write_text("from mrvi_repro.model import MrVI\n")
    (root / "analysis" / "_y.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..baselines import z\n"
    )
    (root / "model" / "_ok.py").write_text("from mrvi_repro.data import _x\nfrom . import _ok\n")
    assert layer_violations(root) == [
        "mrvi_repro.analysis._y -> mrvi_repro.baselines",
        "mrvi_repro.data._x -> mrvi_repro.model",
    ]


def test_a_module_off_the_floors_is_refused():
    with pytest.raises(AssertionError, match="on no floor"):
        unit_of("mrvi_repro.newstage")


@pytest.mark.parametrize("module", ["mrvi_repro.pipeline", "mrvi_repro.data.download"])
def test_what_the_workflow_imports_at_load_time_is_light(module):
    heavy = ("jax", "numpy", "anndata", "scanpy", "plotnine", "pertpy", "xarray")
    code = f"import sys, {module}; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
