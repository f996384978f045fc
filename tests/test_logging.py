"""The adapters' logging: records and stderr to the rule's log, user-facing errors on the console."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_adapter(tmp_path, body: str) -> tuple[subprocess.CompletedProcess, str]:
    """Run a small adapter-like script; return the process and its log file's text."""
    log = tmp_path / "logs" / "rule.log"
    script = textwrap.dedent(
        f"""
        from mrvi_repro._logging import errors_on_console, setup_logging
        setup_logging({str(log)!r})
        """
    ) + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    return proc, log.read_text()


def test_a_named_error_reaches_the_console_and_the_log(tmp_path):
    proc, log = run_adapter(
        tmp_path,
        """
        class DataContractError(ValueError):
            pass

        with errors_on_console(DataContractError):
            raise DataContractError("x.h5ad: X holds negative values")
        """,
    )
    assert proc.returncode == 1
    # the console shows the error by name, once, without the traceback
    assert "DataContractError: x.h5ad: X holds negative values" in proc.stderr
    assert proc.stderr.count("negative values") == 1 and "Traceback" not in proc.stderr
    # the log keeps the traceback
    assert "Traceback" in log and "DataContractError: x.h5ad: X holds negative values" in log


def test_other_errors_stay_in_the_log(tmp_path):
    proc, log = run_adapter(
        tmp_path,
        """
        with errors_on_console(KeyError):
            raise RuntimeError("internal detail")
        """,
    )
    assert proc.returncode == 1
    assert "internal detail" not in proc.stderr and "RuntimeError: internal detail" in log
