"""Salt loader (no daemons) with the formula's modules loaded straight from the checkout."""

import logging

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
    """A masterless minion rooted at ``root`` (pillar in root/pillar, log in root/minion.log)."""
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
    (The minion log file still gets DEBUG: the tests about secrets in logs read it.)"""
    caplog.set_level(logging.INFO)


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
