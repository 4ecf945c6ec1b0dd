"""The ``ledger`` command: a thin click layer over ``ledger`` and ``projections``."""
