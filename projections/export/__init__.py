"""Deterministic, safe snapshot exports (docs/architecture.md, Exports).

The lower layer, usable on its own: :mod:`.safety` (formula-injection neutralising,
safe file names, path confinement, secret redaction), :mod:`.writers` (byte-stable
CSV, Parquet, JSON and xlsx writers over Arrow tables that are already sorted, one
module per format), :mod:`.hashing_sink` (a file that hashes its bytes as they are
written), :mod:`.snapshot` (a snapshot folder that is complete or absent, never
half-written) and :mod:`.manifest` (``manifest.json``: file hashes, row counts,
versions and the ledger head the export was taken at). Building the tables from the ledger's
projections, and the ``ledger export`` command, sit on top of these.
"""
