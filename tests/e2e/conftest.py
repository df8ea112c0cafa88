from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import SimThread, simulator


@pytest.fixture(scope="session")
def sim_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One root key (and so one patched neonize copy) for the whole run.
    return tmp_path_factory.mktemp("sim-state")


@pytest.fixture
def sim(sim_state: Path) -> Iterator[SimThread]:
    with simulator(sim_state) as running:
        yield running
