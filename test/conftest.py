"""Shared fixtures. The whole suite runs inside scripts/sandbox (a private mount namespace with
copy-on-write /etc, /var and /usr/lib/ocf), so applying the formula for real never touches the host."""

import os
import pathlib
import shutil
import sys

import pytest
import yaml

FORMULA_ROOT = pathlib.Path(__file__).resolve().parent.parent

import salt._logging

pytest_plugins = ["test.plugins.services"]


def pytest_configure(config):
    if os.geteuid() == 0 and os.environ.get("GLANCE_HA_SANDBOX") != "1":
        # Re-run this very pytest command inside the sandbox rather than write the host's /etc.
        capman = config.pluginmanager.getplugin("capturemanager")
        if capman:
            capman.suspend_global_capture(in_=True)
        sandbox = str(FORMULA_ROOT / "scripts" / "sandbox")
        os.execv(sandbox, [sandbox, sys.executable, "-m", "pytest", *sys.argv[1:]])


def pytest_sessionstart(session):
    # salt's import-time DeferredStreamHandler would flush into pytest's closed capture stream.
    salt._logging.shutdown_temp_handler()


@pytest.fixture(scope="session")
def formula_root():
    return FORMULA_ROOT


@pytest.fixture(scope="session")
def state_tree(tmp_path_factory):
    """A file_roots directory holding only the formula (symlinks into the checkout): pointing
    file_roots at the checkout itself makes the fileserver walk both venvs on every run."""
    tree = tmp_path_factory.mktemp("state-tree")
    for name in ("glance_ha", "_modules", "_states", "_utils"):
        (tree / name).symlink_to(FORMULA_ROOT / name)
    return tree


@pytest.fixture(scope="session")
def salt_factories_default_root_dir(tmp_path_factory):
    # The default is /tmp; keep it short (AF_UNIX paths < 108 chars) and private to the session.
    return tmp_path_factory.mktemp("sf")


def load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="session")
def defaults():
    return load_yaml(FORMULA_ROOT / "glance_ha" / "defaults.yaml")


@pytest.fixture(scope="session")
def osfamilymap():
    return load_yaml(FORMULA_ROOT / "glance_ha" / "osfamilymap.yaml")


@pytest.fixture(scope="session")
def example_pillar():
    return load_yaml(FORMULA_ROOT / "pillar.example")


def deep_merge(base, over):
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


@pytest.fixture(scope="session")
def site_pillar(example_pillar):
    """pillar.example with a per-site override layered on top (test/pillar/site-override.sls)."""
    return deep_merge(example_pillar, load_yaml(FORMULA_ROOT / "test" / "pillar" / "site-override.sls"))


def wipe(*paths):
    """Remove files/dirs inside the sandbox so a test starts from a known state."""
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """GLANCE_HA_STRICT=1 (CI): a skipped test is a failure. Every real component the suite needs is
    installed by scripts/bootstrap, so a skip there means a test silently proved nothing."""
    if os.environ.get("GLANCE_HA_STRICT") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"GLANCE_HA_STRICT: {len(skipped)} test(s) skipped; failing the run", red=True)
        session.exitstatus = 1
