"""Fixtures for the chart tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chartlib import ROOT  # noqa: E402
from support import FakeKube, Server, start_server, stop  # noqa: E402


@pytest.fixture(scope="session")
def signgate_bin() -> Path:
    """The binary: $SIGNGATE_BIN (scripts/test-chart builds it, `--release` as in the
    Dockerfile), else a debug build made here."""
    env = os.environ.get("SIGNGATE_BIN")
    if env:
        path = Path(env)
        assert path.is_file(), f"SIGNGATE_BIN={env} does not exist"
        return path
    subprocess.run(["cargo", "build", "--locked", "--quiet", "--bin", "signgate"], cwd=ROOT, check=True)
    return ROOT / "target" / "debug" / "signgate"


@pytest.fixture
def serve(signgate_bin: Path, tmp_path: Path) -> Iterator[Any]:
    """serve(args, ...) starts signgate; every server is stopped at teardown."""
    started: list[Server] = []

    def run(args: list[str], *, port: int, metrics_port: int, ca_pem: str | None = None,
            sni: str = "localhost", env: dict[str, str] | None = None) -> Server:
        s = start_server(signgate_bin, args, port=port, metrics_port=metrics_port,
                         log=tmp_path / f"serve-{len(started)}.log", ca_pem=ca_pem, sni=sni, env=env)
        started.append(s)
        return s

    yield run
    for s in started:
        stop(s)


@pytest.fixture
def fake_kube() -> Iterator[FakeKube]:
    k = FakeKube()
    yield k
    k.close()

