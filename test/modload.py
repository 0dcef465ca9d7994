"""The one way tests and benchmarks load a formula module as a plain Python module (no Salt loader).

``load("_utils/glance_ha_secrets.py")`` imports a pure module; ``load("_modules/glance_ha.py",
__grains__={...})`` also sets the Salt dunders a test wants to fake. ``__utils__`` is filled with
the formula's pure ``_utils`` modules, as Salt's loader would."""

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
_UTILS = {}


class _Utils(dict):
    """``__utils__['module.function']`` over the formula's _utils/*.py, loaded on first use."""

    def __missing__(self, key):
        module, _, func = key.partition(".")
        if module not in _UTILS:
            _UTILS[module] = load(f"_utils/{module}.py")
        value = getattr(_UTILS[module], func)
        self[key] = value
        return value


def load(relpath, name=None, **dunders):
    path = ROOT / relpath
    name = name or "ghf_" + path.parent.name.strip("_") + "_" + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    module.__utils__ = _Utils()
    for key, value in dunders.items():
        setattr(module, key, value)
    spec.loader.exec_module(module)
    return module
