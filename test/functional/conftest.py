"""Salt loader (no daemons) with the formula's modules loaded straight from the checkout."""

import contextlib
import logging
from pathlib import Path

import pytest
import salt.config
import yaml
from saltfactories.utils.functional import Loaders


@pytest.fixture(scope="session")
def minion_root(tmp_path_factory, example_pillar):
    root = tmp_path_factory.mktemp("minion-root")
    (root / "pillar").mkdir()
    (root / "pillar/top.sls").write_text("base:\n  '*':\n    - glance_ha\n")
    (root / "pillar/glance_ha.sls").write_text(yaml.safe_dump(example_pillar))
    return root


def minion_config(root, minion_id, state_tree, formula_root):
    """A masterless minion rooted at ``root`` (pillar in root/pillar; ``log_file`` root/minion.log, which
    saltfactories' Loaders never open: the ``minion_log`` fixtures write it)."""
    conf = {"id": minion_id, "root_dir": str(root), "file_client": "local",
            "file_roots": {"base": [str(state_tree)]},
            "pillar_roots": {"base": [str(root / "pillar")]},
            # reset_state() rmtree's the cachedir (extmods), so load from the checkout:
            "module_dirs": [str(formula_root / "_modules")],
            "states_dirs": [str(formula_root / "_states")],
            "utils_dirs": [str(formula_root / "_utils")],
            "log_file": str(root / "minion.log"), "log_level_logfile": "debug"}
    (root / "minion").write_text(yaml.safe_dump(conf))
    return salt.config.minion_config(str(root / "minion"))


@pytest.fixture(scope="session")
def minion_opts(minion_root, formula_root, state_tree):
    return minion_config(minion_root, "functional-minion", state_tree, formula_root)


@pytest.fixture(autouse=True)
def quiet_logs(caplog):
    """Salt's loader logs thousands of DEBUG lines per state run; capturing them doubles the run time.
    (The tests about secrets in logs ask for ``minion_log``, which writes every DEBUG record to a file.)"""
    caplog.set_level(logging.INFO)


class DebugLog:
    """The minion log a test wrote (every record of every logger at DEBUG, one line each)."""

    def __init__(self, path):
        self.path = Path(path)

    def text(self, marker):
        """The log's text, after proving it holds the run's debug output: it is not empty and a DEBUG
        line of the run contains ``marker``; otherwise the caller's "secret not in log" would be vacuous.
        Shown failing: with debug_log's handler at INFO, test_secrets_never_in_output_or_log fails with
        ``minion.log: no DEBUG line containing 'salt://glance_ha/config/init.sls'``."""
        text = self.path.read_text(encoding="utf-8", errors="replace")
        assert text, f"{self.path} is empty"
        assert any(" DEBUG " in line and marker in line for line in text.splitlines()), \
            f"{self.path}: no DEBUG line containing {marker!r}"
        return text


@contextlib.contextmanager
def debug_log(path):
    """Write every log record (DEBUG and up, all loggers) to ``path`` while the block runs, as a
    minion with ``log_level_logfile: debug`` would: saltfactories' Loaders set up no log file."""
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # saltfactories' loader wrapper logs the arguments of every call a test makes (a password given
    # as an argument included): the harness, which a real minion does not have.
    handler.addFilter(lambda record: not record.name.startswith("saltfactories"))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield DebugLog(path)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


@pytest.fixture
def minion_log(minion_opts):
    """The functional minion's log file (``log_file``) at DEBUG for this test: a DebugLog."""
    with debug_log(minion_opts["log_file"]) as log:
        yield log


@pytest.fixture(scope="session")
def loaders(minion_opts):
    return Loaders(minion_opts)


@pytest.fixture(autouse=True)
def reset_loaders_state(loaders):
    try:
        yield
    finally:
        loaders.reset_state()


@pytest.fixture
def modules(loaders):
    return loaders.modules


@pytest.fixture
def states(loaders):
    return loaders.states
