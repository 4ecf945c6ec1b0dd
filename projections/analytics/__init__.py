"""Analytics over projections: statistics, outliers, comparisons, failures and curves.

Two layers. The maths modules are pure functions over numpy arrays (``stats``,
``outliers``, ``compare``, ``failures``, ``curves``); they know nothing about the
ledger, so they can be held against published reference values in isolation. The
``*_report`` modules run one analysis over a ``Query`` and shape its
``AnalyticsResult``; ``api`` gathers them, and is where callers import from. scipy is
imported lazily, inside the functions that need it, so importing this package stays
cheap.
"""
