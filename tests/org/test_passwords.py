"""Password hashes: argon2id with a named parameter profile (``CXM_ARGON2_PROFILE``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import extract_parameters, profiles

from cxm.errors import Invalid
from cxm.org import auth
from tests.conftest import free_port


def test_the_default_profile_is_rfc_9106_low_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CXM_ARGON2_PROFILE", raising=False)
    assert auth.argon2_profile() == "RFC_9106_LOW_MEMORY"
    made = extract_parameters(auth.hash_password("correct horse"))
    want = profiles.RFC_9106_LOW_MEMORY
    assert (made.type, made.memory_cost, made.time_cost, made.parallelism) == (
        want.type, 65536, 3, 4,
    )  # fmt: skip


def test_a_hash_keeps_its_parameters_when_the_profile_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CXM_ARGON2_PROFILE", "CHEAPEST")
    cheap = auth.hash_password("correct horse")
    assert extract_parameters(cheap).memory_cost == 8
    monkeypatch.setenv("CXM_ARGON2_PROFILE", "RFC_9106_LOW_MEMORY")
    assert auth.verify_password(cheap, "correct horse")
    assert not auth.verify_password(cheap, "wrong horse")
    strong = auth.hash_password("correct horse")
    monkeypatch.setenv("CXM_ARGON2_PROFILE", "cheapest")  # names are read case-insensitively
    assert auth.verify_password(strong, "correct horse")


def test_an_unknown_profile_is_refused_naming_the_known_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CXM_ARGON2_PROFILE", "fast")
    with pytest.raises(Invalid, match="'FAST' is not a known profile; known: RFC_9106_LOW"):
        auth.hash_password("correct horse")


def test_the_server_refuses_to_start_with_an_unknown_profile(tmp_path: Path) -> None:
    env = {**os.environ, "CXM_ARGON2_PROFILE": "fast", "CXM_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "cxm.cli.main", "serve", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "CXM_ARGON2_PROFILE: 'FAST' is not a known profile; known:" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
