"""The lock file: reading, writing, refusing malformed ones."""

from __future__ import annotations

import pytest

from mrvi_repro.data.download import RegistryError, read_lock


def test_a_malformed_lock_is_refused(tmp_path):
    lock = tmp_path / "lock.tsv"
    lock.write_text("name\turl\tsize\tsha256\nx\thttp://x\tbig\tabc\n")
    with pytest.raises(RegistryError, match="line 2"):
        read_lock(lock)
    lock.write_text("name,url\n")
    with pytest.raises(RegistryError, match="first line"):
        read_lock(lock)
