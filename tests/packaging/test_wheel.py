"""The package as a user gets it: built into an sdist and a wheel, installed in a fresh
virtualenv, used from outside the source tree.

Every other test runs against the editable install, which imports straight from the
tree and so cannot notice a module, subpackage or template that the wheel leaves out
(``ledger.importers`` once was). This test builds the sdist from a copy of the files an
sdist is made of, builds the wheel from the unpacked sdist (as ``python -m build``
does), and then:

- the wheel holds exactly the tree's modules, ``py.typed`` files and templates;
- a fresh virtualenv (``venv --without-pip``) gets the wheel with ``pip --no-deps``;
  its dependencies come from this test environment's site-packages, added as a plain
  path entry (a ``.pth`` line: the editable install's own ``.pth`` is *not* processed,
  so the source tree stays off ``sys.path``). That saves installing numpy, scipy and
  pyarrow again (tens of seconds) and stays honest: the test checks that the source
  tree is not on ``sys.path``, that ``ledger`` is imported from the new site-packages,
  and that every requirement of the wheel is met there;
- every module in the wheel imports; a module of an optional extra is skipped only when
  a distribution of that extra is not installed (the reason is printed);
- every command's ``--help`` runs in the fresh virtualenv (one process for all of
  them; ``ledger --help`` through the installed script), and a real ``ledger import
  csv`` then ``ledger export --format all`` through the installed script write a
  snapshot whose bytes equal the source tree's export of the same ledger.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ledger", "projections", "cli")
SDIST_FILES = ("pyproject.toml", "README.md")

# Optional extras: a module importing one of these is skipped when it is not installed.
EXTRA_OF = {
    "psycopg": "postgres",
    "mlflow": "mlflow",
    "sqlalchemy": "mlflow",
    "alembic": "mlflow",
    "optuna": "optuna",
    "duckdb": "sql",
    "lightning": "lightning",
    "pytorch_lightning": "lightning",
    "transformers": "transformers",
    "accelerate": "transformers",
    "torch": "transformers",
    "keras": "keras",
    "pandas": "pandas",
}

CSV = textwrap.dedent(
    """\
    run,case,lr,loss,accuracy,status
    r1,base,0.1,0.52,0.81,completed
    r2,base,0.1,0.50,0.83,completed
    r3,half,0.05,0.47,0.85,completed
    r4,half,0.05,nan,0.12,failed
    """
)
IMPORT_ARGS = [
    "import", "csv", "runs.csv", "--study", "s", "--run", "run", "--case", "case",
    "--param", "lr", "--metric", "loss", "--metric", "accuracy", "--status", "status",
]  # fmt: skip
EXPORT_ARGS = ["export", "--study", "s", "--format", "all", "--out", "out"]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def _tree_files() -> set[str]:
    """What the wheel must hold: every module, py.typed and template of the packages."""
    out = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            rel = path.relative_to(ROOT)
            if "__pycache__" in rel.parts or not path.is_file():
                continue
            if path.suffix == ".py" or path.name == "py.typed" or "templates" in rel.parts:
                out.add(rel.as_posix())
    return out


def _build(tmp: Path) -> tuple[Path, Path]:
    """(sdist, wheel): the sdist from a copy of its files, the wheel from the sdist."""
    src = tmp / "src"
    for package in PACKAGES:
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in SDIST_FILES:
        shutil.copy2(ROOT / name, src / name)
    dist = tmp / "dist"
    dist.mkdir()
    hook = "from setuptools import build_meta as b; print(b.build_{}({!r}))"
    sdist = dist / _run([sys.executable, "-c", hook.format("sdist", str(dist))], src).split()[-1]
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    wheel = _run([sys.executable, "-c", hook.format("wheel", str(dist))], unpacked).split()[-1]
    return sdist, dist / wheel


def _fresh_venv(tmp: Path, wheel: Path) -> tuple[Path, dict[str, str]]:
    """A new virtualenv holding the wheel; this environment's packages as a path entry."""
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp)
    py = venv / "bin" / "python"
    site = Path(
        _run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp).strip()
    )
    ours = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "_test_env_packages.pth").write_text("".join(f"{p}\n" for p in ours))
    pip = [sys.executable, "-m", "pip", "--python", str(py), "install", "-q"]
    _run([*pip, "--no-deps", "--no-index", str(wheel)], tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LEDGER"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return venv, env


CHECK = """
import importlib, importlib.metadata as md, json, sys
from packaging.requirements import Requirement
root, modules, extra_of = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
assert not any(p.rstrip("/") == root for p in sys.path), sys.path
import ledger
assert ledger.__file__.startswith(sys.prefix), ledger.__file__
unmet = []
for text in md.requires("results-ledger") or []:
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    try:
        have = md.version(req.name)
    except md.PackageNotFoundError:
        unmet.append(f"{req}: not installed")
        continue
    if have not in req.specifier:
        unmet.append(f"{req}: {have} installed")
skipped, failed = {}, {}
for name in modules:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        extra = extra_of.get(top)
        try:
            md.version(top)
            present = True
        except md.PackageNotFoundError:
            present = False
        if extra is None or present:
            failed[name] = repr(exc)
        else:
            skipped[name] = f"extra [{extra}] absent ({top} not installed)"
    except Exception as exc:
        failed[name] = repr(exc)
print(json.dumps({"unmet": unmet, "skipped": skipped, "failed": failed}))
"""

HELPS = """
import click, json
from click.testing import CliRunner
from cli.main import cli
def walk(cmd, path):
    yield path
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.list_commands(None)):
            yield from walk(cmd.get_command(None, name), [*path, name])
runner, out = CliRunner(), {}
for path in walk(cli, []):
    result = runner.invoke(cli, [*path, "--help"])
    out[" ".join(path)] = [result.exit_code, result.output[:200]]
print(json.dumps(out))
"""


def _module_name(path: str) -> str | None:
    if not path.endswith(".py"):
        return None
    parts = path[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("wheel")
    sdist, wheel = _build(tmp)
    venv, env = _fresh_venv(tmp, wheel)
    return {"tmp": tmp, "sdist": sdist, "wheel": wheel, "venv": venv, "env": env}


def test_the_wheel_holds_every_module_and_data_file_of_the_tree(built):
    with zipfile.ZipFile(built["wheel"]) as whl:
        names = {n for n in whl.namelist() if not n.split("/")[0].endswith(".dist-info")}
        entry_points = whl.read(
            next(n for n in whl.namelist() if n.endswith(".dist-info/entry_points.txt"))
        ).decode()
    assert names == _tree_files()
    assert "ledger = cli.main:main" in entry_points
    with tarfile.open(built["sdist"]) as tar:
        in_sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert _tree_files() | set(SDIST_FILES) <= in_sdist


def test_every_module_imports_from_the_installed_wheel(built):
    with zipfile.ZipFile(built["wheel"]) as whl:
        modules = sorted(filter(None, map(_module_name, whl.namelist())))
    py = str(built["venv"] / "bin" / "python")
    args = [py, "-c", CHECK, str(ROOT), json.dumps(modules), json.dumps(EXTRA_OF)]
    report = json.loads(_run(args, built["tmp"], built["env"]).splitlines()[-1])
    assert report["unmet"] == [], "requirements of the wheel not met"
    assert report["failed"] == {}
    for name, why in report["skipped"].items():
        print(f"skipped {name}: {why}")  # -s shows them; each names its missing extra
    assert len(modules) - len(report["skipped"]) > 100  # the walk saw the packages


def test_every_command_help_runs_from_the_installed_package(built):
    """Every command's ``--help`` in one process of the fresh virtualenv (each command
    module is imported on its first use, so this imports them all), and the top-level
    help through the installed ``ledger`` script itself."""
    py, ledger = built["venv"] / "bin" / "python", built["venv"] / "bin" / "ledger"
    helps = json.loads(_run([str(py), "-c", HELPS], built["tmp"], built["env"]))
    assert {"", "import csv", "export", "demo"} <= set(helps)
    bad = {path: out for path, (code, out) in helps.items() if code != 0}
    assert bad == {}
    assert all(out.startswith("Usage: ") for _, out in helps.values())
    top = _run([str(ledger), "--help"], built["tmp"], built["env"])
    assert top.startswith("Usage: ledger") and "import" in top


def test_import_and_export_from_the_installed_script(built, tmp_path):
    """A real import and export through the installed ``ledger``; the source tree's
    export of the same ledger writes the same bytes."""
    from click.testing import CliRunner

    from cli.main import cli

    work = built["tmp"] / "work"
    work.mkdir()
    (work / "runs.csv").write_text(CSV)
    ledger = str(built["venv"] / "bin" / "ledger")
    for args in (IMPORT_ARGS, EXPORT_ARGS):
        _run([ledger, "--ledger", "l.ledger", *args], work, built["env"])
    again = CliRunner().invoke(
        cli, ["--ledger", str(work / "l.ledger"), *EXPORT_ARGS[:-1], str(tmp_path)]
    )
    assert again.exit_code == 0, again.output

    def files(folder: Path) -> dict[str, bytes]:
        return {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*")
            if p.is_file()
        }

    got, want = files(work / "out"), files(tmp_path)
    assert {"s/manifest.json", "s/study.json", "s/runs.csv", "s/report.xlsx"} <= set(got)
    assert sorted(got) == sorted(want)
    assert [name for name in got if got[name] != want[name]] == []
    manifest = json.loads(got["s/manifest.json"])
    assert manifest["files"]["runs.csv"]["rows"] == 4
