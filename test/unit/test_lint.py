"""Lint as part of the suite: salt-lint on every SLS, yamllint on pillar.example and YAML, ruff on Python."""

import subprocess
import sys
from pathlib import Path

from test.conftest import FORMULA_ROOT

BIN = Path(sys.executable).parent


def run(*cmd):
    proc = subprocess.run(cmd, cwd=FORMULA_ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_salt_lint():
    sls = sorted(str(p.relative_to(FORMULA_ROOT)) for p in (FORMULA_ROOT / "glance_ha").rglob("*.sls"))
    assert sls
    run(str(BIN / "salt-lint"), *sls)


def test_yamllint():
    run(str(BIN / "yamllint"), "-s", "pillar.example", "glance_ha/defaults.yaml", "glance_ha/osfamilymap.yaml",
        "test/pillar")


def test_ruff():
    run(str(BIN / "ruff"), "check", "_modules", "_states", "test", "bench", "lab")
