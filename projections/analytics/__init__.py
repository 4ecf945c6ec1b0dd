"""Analytics over projections: statistics, outliers, comparisons, failures and curves.

The submodules are pure functions over numpy arrays (``stats``, ``outliers``,
``compare``, ``failures``, ``curves``); they know nothing about the ledger, so they can
be held against published reference values in isolation. scipy is imported lazily,
inside the functions that need it, so importing this package stays cheap.
"""
