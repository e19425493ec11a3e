"""Survey links from the command line point at the running server unless CXM_BASE_URL is set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cxm.console import RunningServer, write_running_server
from cxm.surveys.cli import _link_base


def test_links_use_the_running_servers_address_then_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CXM_BASE_URL", raising=False)
    assert _link_base() == "http://127.0.0.1:8000"  # nothing runs: the default
    write_running_server(tmp_path, RunningServer("http://127.0.0.1:8101", os.getpid(), "t", "k"))
    assert _link_base() == "http://127.0.0.1:8101"  # `make run PORT=8101`
    monkeypatch.setenv("CXM_BASE_URL", "https://cx.example.com")
    assert _link_base() == "https://cx.example.com"  # the setting wins
