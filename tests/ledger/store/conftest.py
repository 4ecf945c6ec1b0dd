"""Backends for the contract suite: every test taking ``location`` runs once per backend
(the pattern of the ``eventsourcing`` library's ``tests/persistence.py``)."""

from __future__ import annotations

import uuid

import pytest

BACKENDS = ["lmdb", "memory", "postgresql"]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def location(backend: str, tmp_path, request) -> str:
    """A location naming a new, empty ledger on ``backend``."""
    if backend == "lmdb":
        return str(tmp_path / "contract.ledger")
    if backend == "memory":
        return f"memory:contract-{uuid.uuid4().hex}"
    return request.getfixturevalue("pg_url")
