"""bench/compare_reference.py: how references are named and where their venvs live."""

from __future__ import annotations

import pytest


def test_reference_names_pick_a_backend_and_a_release(bench_script):
    cmp = bench_script("compare_reference")
    assert cmp.reference_version("jax") == ("jax", "1.4.2")
    assert cmp.reference_version("torch@1.5.1") == ("torch", "1.5.1")
    assert cmp.reference_venv("1.4.2") == cmp.BENCH / ".reference-venv"
    assert cmp.reference_venv("1.5.1") == cmp.BENCH / ".reference-venv-1.5.1"
    args = cmp.parse_args(["--backends", "jax, torch@1.5.1,jax"])
    assert args.backends == ["jax", "torch@1.5.1"]
    assert cmp.parse_args(["--backends", "none"]).backends == []


def test_an_unknown_backend_is_refused(bench_script, capsys):
    cmp = bench_script("compare_reference")
    with pytest.raises(SystemExit):
        cmp.parse_args(["--backends", "torch,numpyro@1.5.1"])
    assert "unknown backend(s) ['numpyro@1.5.1']" in capsys.readouterr().err
