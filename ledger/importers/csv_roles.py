"""Which role each column of a wide CSV plays: the options name them, nothing is guessed.

A column that silently became a param instead of a metric would make a wrong study, so
every column gets exactly one role and a column no option claims is an error unless
``unmapped`` says what to do with it. Roles come from fixed options (``--run``,
``--stage`` ...), from ``--case``, and from names or globs (``fnmatch``, case-sensitive)
for metrics, params, config, JSON and ignored columns; a glob never takes a column
that a name already claimed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from .common import ImportSourceError, parse_number


def match_columns(header: list[str], patterns: Iterable[str], option: str, where: str) -> list[str]:
    out: list[str] = []
    for pat in patterns:
        hits = [h for h in header if fnmatchcase(h, pat)]
        if not hits:
            raise ImportSourceError(
                f"{option} {pat!r} matches no column; the columns are: {', '.join(header)}",
                where=where,
            )
        out.extend(h for h in hits if h not in out)
    return out


def need_column(header: list[str], name: str | None, option: str, where: str) -> None:
    if name is not None and name not in header:
        raise ImportSourceError(
            f"{option} {name!r} is not a column; the columns are: {', '.join(header)}",
            where=where,
        )


def resolve_roles(
    header: list[str],
    rows: list[tuple[int, list[str]]],
    src: str,
    *,
    fixed: list[tuple[str | None, str, str]],
    case: Sequence[str],
    error_column: str | None,
    by_pattern: list[tuple[str, Sequence[str], str]],
    unmapped: str,
) -> dict[str, str]:
    """Every column's one role, or an error naming the option or the columns left over."""
    roles: dict[str, str] = {}

    def claim(col: str, role: str) -> None:
        if col in roles and roles[col] != role:
            raise ImportSourceError(
                f"mapped twice: as {roles[col]} and as {role}; give each column one role",
                where=src,
                field=col,
                label="column",
            )
        roles[col] = role

    for col, role, option in fixed:
        need_column(header, col, option, src)
        if col is not None:
            claim(col, role)
    for col in case:
        need_column(header, col, "--case", src)
        claim(col, "case")
    need_column(header, error_column, "--error-column", src)  # read, not claimed: it has a role too
    for option, pats, role in by_pattern:
        # a glob never steals a column that a name (or an earlier option) already claimed
        names = [p for p in pats if not any(ch in p for ch in "*?[")]
        for col in match_columns(header, names, option, src):
            claim(col, role)
        for col in match_columns(header, [p for p in pats if p not in names], option, src):
            roles.setdefault(col, role)

    left = [h for h in header if h not in roles]
    if left and unmapped == "error":
        raise ImportSourceError(
            f"{len(left)} column(s) not mapped to a role: {', '.join(left)}; map each with "
            "--metric, --param, --config, --json-column or --ignore, or set "
            "--unmapped auto|config|ignore",
            where=src,
        )
    for col in left:
        if unmapped == "auto":
            i = header.index(col)
            numeric = all(r[i] == "" or parse_number(r[i]) is not None for _, r in rows)
            roles[col] = "metric" if numeric and any(r[i] for _, r in rows) else "config"
        else:
            roles[col] = unmapped
    return roles
