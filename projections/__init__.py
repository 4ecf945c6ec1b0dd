"""Pure folds over the event log: the case DAG, runs, metric series, rankings, analytics
and deterministic exports. ``projections`` imports ``ledger``; never the reverse."""
