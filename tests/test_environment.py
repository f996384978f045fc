"""requirements.lock, envs/*.yaml and pyproject.toml agree (files only: no network, no installs)."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
ENVS = sorted((REPO / "envs").glob("*.yaml"))
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = canonicalize_name(PYPROJECT["project"]["name"])
#: the platform that requirements.lock is resolved for (Makefile, target lock)
LOCK_MARKERS = {
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*\\?$")
_HASH = re.compile(r"^\s+--hash=sha256:[0-9a-f]{64}\s*\\?$")


def _lock_entries() -> dict[str, tuple[str, list[str]]]:
    """canonical name -> (version, its --hash lines), failing on any other requirement line."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current = None
    for n, line in enumerate(LOCK.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if m := _PIN.match(line):
            current = canonicalize_name(m.group(1))
            assert current not in entries, f"line {n}: {current} pinned twice"
            entries[current] = (m.group(2), [])
        elif _HASH.match(line) and current is not None:
            entries[current][1].append(line.strip())
        else:
            pytest.fail(f"{LOCK.name}, line {n}: neither name==version nor --hash: {line!r}")
    return entries


def _declared(extras: list[str]) -> list[Requirement]:
    """[project].dependencies and the given extras, following self-references such as
    ``mrvi-repro[slurm]``."""
    optional = PYPROJECT["project"]["optional-dependencies"]
    todo, seen, found = (
        list(extras),
        set(),
        [Requirement(d) for d in PYPROJECT["project"]["dependencies"]],
    )
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for spec in optional[extra]:
            req = Requirement(spec)
            if canonicalize_name(req.name) == PROJECT:
                todo += sorted(req.extras)
            else:
                found.append(req)
    assert {"test", "slurm"} <= seen
    return found


def _env_pins(path: Path) -> tuple[list, dict[str, str]]:
    """(the conda dependencies, canonical name -> version of the pip section)."""
    deps = yaml.safe_load(path.read_text())["dependencies"]
    pip = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip) == 1, f"{path.name}: one pip section"
    pins = {}
    for spec in pip[0]:
        req = Requirement(spec)
        (op_version,) = req.specifier
        assert op_version.operator == "==", f"{path.name}: {spec} is not pinned with =="
        pins[canonicalize_name(req.name)] = op_version.version
    return deps, pins


def test_lock_pins_every_declared_dependency_within_its_specifier():
    lock = _lock_entries()
    for req in _declared(["test"]):
        if req.marker is not None and not req.marker.evaluate(LOCK_MARKERS):
            continue
        name = canonicalize_name(req.name)
        assert name in lock, f"{req} is not in {LOCK.name} (run `make lock`)"
        version = lock[name][0]
        assert req.specifier.contains(Version(version), prereleases=True), (
            f"{LOCK.name} pins {name}=={version}, outside pyproject.toml's {req}"
        )


def test_every_locked_package_is_pinned_and_hashed():
    lock = _lock_entries()
    assert len(lock) > len(PYPROJECT["project"]["dependencies"])
    assert PROJECT not in lock, "the project itself is installed from the source (-e .)"
    for name, (version, hashes) in lock.items():
        Version(version)
        assert hashes, f"{name}=={version} has no --hash=sha256:"


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_conda_env_file_is_pinned_to_the_lock(path):
    env = yaml.safe_load(path.read_text())
    assert isinstance(env["name"], str) and env["name"]
    assert isinstance(env["channels"], list) and env["channels"]
    deps, pins = _env_pins(path)
    assert "python=3.12" in deps
    lock = _lock_entries()
    for name, version in pins.items():
        assert name in lock, f"{path.name} installs {name}, which is not in {LOCK.name}"
        assert version == lock[name][0], f"{path.name}: {name}=={version}, lock: {lock[name][0]}"


def test_analysis_env_has_every_runtime_dependency_at_the_locked_version():
    _, pins = _env_pins(REPO / "envs" / "mrvi-repro.yaml")
    lock = _lock_entries()
    for spec in PYPROJECT["project"]["dependencies"]:
        name = canonicalize_name(Requirement(spec).name)
        assert pins.get(name) == lock[name][0], f"envs/mrvi-repro.yaml: {name} not at the lock's"
    assert PROJECT not in pins, "the jobs import mrvi_repro from src/, not from the environment"


def test_env_files_are_those_that_make_lock_writes():
    spec = importlib.util.spec_from_file_location("make_envs", REPO / "tools" / "make_envs.py")
    make_envs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_envs)
    assert {p.stem for p in ENVS} == set(make_envs.ENVIRONMENTS)
    for path in ENVS:
        assert path.read_text() == make_envs.render(path.stem), f"{path.name}: run `make lock`"
