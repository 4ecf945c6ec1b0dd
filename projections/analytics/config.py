"""Analytics defaults from a ``ledger.toml``, validated, and overridden by flags.

A team keeps its conventions (a 90% interval, modified z-scores at 3.5, at least five
runs before an interval means anything, 2,000 bootstrap resamples with seed 7) in one
file beside the ledger instead of repeating flags::

    [analytics]
    confidence = 0.9
    min_n = 5
    bootstrap = 2000          # resamples; 0 = no bootstrap interval
    seed = 7
    outlier_method = "modified-z"   # iqr | zscore | modified-z | bounds
    outlier_factor = 3.5      # IQR factor k, or the z / modified-z threshold
    outlier_low = -500.0      # bounds only
    outlier_high = 0.0

Only the ``[analytics]`` table is read (other tools may keep other tables in the same
file); inside it an unknown key is an error, so a typo never silently falls back to a
default. Where: ``./ledger.toml`` (the current directory) first, else ``ledger.toml``
in the folder that holds the ledger; the first found is used, they are not merged.
Flags override the file; the file overrides the built-in defaults.

Reading TOML needs ``tomllib`` (Python 3.11+) or the ``tomli`` package on 3.10; without
either, a present ``ledger.toml`` is an error that says so (an absent one is fine).

Errors: ``ConfigError`` (a ``LedgerError``), naming the file and the field.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from projections.errors import ConfigError as ConfigError

__all__ = [
    "CONFIG_NAME",
    "AnalyticsConfig",
    "ConfigError",
    "OUTLIER_METHODS",
    "find_config",
    "load_config",
    "parse_config",
]

CONFIG_NAME = "ledger.toml"
OUTLIER_METHODS = ("iqr", "zscore", "modified-z", "bounds")
# The factor each outlier rule uses when the file and the flags name none.
DEFAULT_FACTORS = {"iqr": 1.5, "zscore": 3.0, "modified-z": 3.5}


class AnalyticsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The defaults every analysis starts from. ``source`` is the file they came from
    (None: built-in), kept so a result can say where its settings were decided."""

    confidence: Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)] = 0.95
    min_n: Annotated[int, msgspec.Meta(ge=1)] = 3
    bootstrap: Annotated[int, msgspec.Meta(ge=0)] = 0
    seed: Annotated[int, msgspec.Meta(ge=0)] = 0
    outlier_method: Literal["iqr", "zscore", "modified-z", "bounds"] = "iqr"
    outlier_factor: Annotated[float, msgspec.Meta(gt=0.0)] | None = None
    outlier_low: float | None = None
    outlier_high: float | None = None
    source: str | None = None

    @property
    def factor(self) -> float | None:
        """The outlier factor in force: the configured one, else the method's default
        (None for bounds, which takes ``outlier_low``/``outlier_high``)."""
        if self.outlier_factor is not None:
            return self.outlier_factor
        return DEFAULT_FACTORS.get(self.outlier_method)

    def override(self, **flags: Any) -> AnalyticsConfig:
        """A copy with every flag that is not None in force (flags beat the file).

        A new ``outlier_method`` without a factor drops the file's factor: a factor
        written for IQR (1.5) means nothing as a z threshold.

        Raises ``ConfigError`` for a name that is not a setting or a value out of range.
        """
        given = {k: v for k, v in flags.items() if v is not None}
        unknown = sorted(set(given) - set(self.__struct_fields__) - {"source"})
        if unknown:
            raise ConfigError(f"unknown analytics setting(s): {', '.join(unknown)}")
        if (
            "outlier_method" in given
            and given["outlier_method"] != self.outlier_method
            and "outlier_factor" not in given
        ):
            given["outlier_factor"] = None
        merged = {k: getattr(self, k) for k in self.__struct_fields__ if k != "source"} | given
        try:
            out = msgspec.convert(merged, AnalyticsConfig)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"invalid analytics setting: {_field_message(exc)}") from None
        return msgspec.structs.replace(out, source=self.source)

    def to_dict(self) -> dict[str, Any]:
        out = msgspec.structs.asdict(self)
        out["outlier_factor"] = self.factor
        return out


class _File(msgspec.Struct):
    """The file's shape: only ``[analytics]`` is ours; other tables are left alone."""

    analytics: dict[str, Any] = {}


def _field_message(exc: msgspec.ValidationError) -> str:
    # msgspec says "Expected `float` > 0.0 - at `$.confidence`"
    text = str(exc).replace("`$.", "`analytics.").replace("at `$`", "at `analytics`")
    return text if " - at `" in text else f"{text} - in [analytics]"


def _tomllib() -> Any:
    try:
        import tomllib  # type: ignore[import-not-found]

        return tomllib
    except ImportError:
        pass
    try:
        import tomli  # type: ignore[import-not-found]

        return tomli
    except ImportError:
        return None


def parse_config(text: str, source: str = CONFIG_NAME) -> AnalyticsConfig:
    """Read and validate the ``[analytics]`` table of TOML ``text``.

    Raises ``ConfigError``: no TOML reader (Python 3.10 without ``tomli``), a syntax
    error (with its line and column), a wrong type or range, an unknown key.
    """
    toml = _tomllib()
    if toml is None:
        raise ConfigError(
            f"{source}: reading it needs Python 3.11+ (tomllib) or the tomli package; "
            "install tomli (pip install tomli) or remove the file"
        )
    try:
        raw = toml.loads(text)
    except toml.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        section = msgspec.convert(raw, _File).analytics
    except msgspec.ValidationError:
        raise ConfigError(
            f"{source}: [analytics] must be a table of settings, got "
            f"{type(raw.get('analytics')).__name__}"
        ) from None
    try:
        cfg = msgspec.convert(section, AnalyticsConfig)
    except msgspec.ValidationError as exc:
        known = ", ".join(f for f in AnalyticsConfig.__struct_fields__ if f != "source")
        raise ConfigError(
            f"{source}: {_field_message(exc)}; fix the value or remove the key (settings: {known})"
        ) from None
    if "source" in section:
        raise ConfigError(f"{source}: `source` is not a setting; remove it")
    for name in ("outlier_low", "outlier_high"):
        value = getattr(cfg, name)
        if value is not None and math.isnan(value):
            raise ConfigError(f"{source}: analytics.{name} must be a number, got nan")
    if (
        cfg.outlier_low is not None
        and cfg.outlier_high is not None
        and cfg.outlier_low > cfg.outlier_high
    ):
        raise ConfigError(
            f"{source}: analytics.outlier_low ({cfg.outlier_low!r}) is above "
            f"analytics.outlier_high ({cfg.outlier_high!r}); swap them"
        )
    return msgspec.structs.replace(cfg, source=source)


def find_config(
    ledger_path: str | Path | None = None, cwd: str | Path | None = None
) -> Path | None:
    """``ledger.toml`` in ``cwd`` (default: the current directory), else beside the
    ledger (in the folder that holds it); None when neither exists."""
    here = Path.cwd() if cwd is None else Path(cwd)
    candidates = [here / CONFIG_NAME]
    if ledger_path is not None:
        candidates.append(Path(ledger_path).absolute().parent / CONFIG_NAME)
    for path in candidates:
        if path.is_file():
            return path
    return None


def load_config(
    ledger_path: str | Path | None = None,
    *,
    path: str | Path | None = None,
    cwd: str | Path | None = None,
) -> AnalyticsConfig:
    """The defaults in force: ``path`` when given, else the file ``find_config`` finds,
    else the built-in ones.

    Raises ``ConfigError`` (unreadable or invalid file).
    """
    found = Path(path) if path is not None else find_config(ledger_path, cwd)
    if found is None:
        return AnalyticsConfig()
    try:
        text = found.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{found}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{found}: not UTF-8 text") from None
    return parse_config(text, str(found))
