"""The distribution builds as a wheel whose packages import on their own: pink_fsm (with the generated machines),
pink_codegen and pink_adapters, and no top-level `codegen` or `adapters` package (PyPI names taken)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Build from a private copy: setuptools writes build/ and *.egg-info into the source tree, and two xdist
    # workers building the same tree at once break each other's build (seen in CI).
    src = tmp_path_factory.mktemp("src") / "pink-fsm"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".ci", "pink-runs", ".hypothesis",
        ".mypy_cache", ".ruff_cache", ".pytest_cache", "node_modules"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    wheels = list(out.glob("pink_fsm-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
def test_wheel_has_the_packages_and_no_taken_names(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("pink_fsm-") or "/" not in n}
    assert {"pink_fsm", "pink_codegen", "pink_adapters"} <= tops
    assert not tops & {"codegen", "adapters", "tests", "spec"}
    for required in ("pink_fsm/generated/slot.py", "pink_fsm/generated/router.py", "pink_fsm/generated/venue.py",
                     "pink_fsm/py.typed", "pink_fsm/runtime/engine.py", "pink_fsm/policy/reference.py",
                     "pink_fsm/audit/store.py", "pink_codegen/cli.py", "pink_codegen/verify/fast.py",
                     "pink_codegen/py.typed", "pink_adapters/__init__.py", "pink_adapters/sim/engine.py",
                     "pink_adapters/bingx/venue.py"):
        assert required in names, f"{required} is missing from the wheel (pyproject packages?)"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "pink = pink_fsm.cli:main" in text and "pink-codegen = pink_codegen.cli:main" in text
    assert "reference = pink_fsm.policy.reference:reference_policy" in text  # the policy entry point


@pytest.mark.slow
def test_wheel_contents_import_on_their_own(wheel: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import pink_fsm.generated.slot as slot, pink_codegen.cli, pink_adapters, pink_codegen;"
        "assert pink_codegen.__file__.startswith(sys.argv[1]), pink_codegen.__file__;"
        "assert slot.__file__.startswith(sys.argv[1]), slot.__file__;"
        "m = slot.SlotMachine(); print(m.state)"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(unpacked)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "IDLE"
