"""Helpers of the crm functional tests: real Pacemaker tools on the CIB file named by CIB_file."""

import pathlib
import subprocess
import xml.etree.ElementTree as ET

import yaml


def run(*args, stdin=None, check=True):
    proc = subprocess.run(list(args), input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed rc={proc.returncode}: {proc.stdout}{proc.stderr}")
    return proc


class Cib:
    """A CIB file, read and edited with the real tools (CIB_file is set by the fixture)."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def xml(self):
        return run("cibadmin", "--query").stdout

    def root(self):
        return ET.fromstring(self.xml())

    def versions(self):
        root = self.root()
        return tuple(int(root.get(k)) for k in ("admin_epoch", "epoch", "num_updates"))

    @property
    def epoch(self):
        return self.versions()[1]

    def find(self, obj_id):
        for elem in self.root().find("configuration").iter():
            if elem.get("id") == obj_id:
                return elem
        return None

    def ids(self, obj_id):
        """Every id inside object ``obj_id`` (element, sets, nvpairs, ops), in document order."""
        elem = self.find(obj_id)
        return [e.get("id") for e in elem.iter() if e.get("id")] if elem is not None else []

    def crm(self, script):
        """Hand edit with crmsh (one crm process; the script ends with commit)."""
        return run("crm", "configure", stdin=script + "\ncommit\n")

    def verify(self):
        return run("crm_verify", "--xml-file", str(self.path), check=False)


def high_data(sls_text):
    """Salt high data of an SLS text (YAML, no Jinja), for ``state.high`` (which honours test=)."""
    high = {}
    for state_id, body in yaml.safe_load(sls_text).items():
        entry = {"__sls__": "crm_test", "__env__": "base"}
        for func, args in body.items():
            mod, fun = func.split(".", 1)
            entry[mod] = [fun, *(args or [])]
        high[state_id] = entry
    return high


def apply_sls(modules, sls_text, test=False):
    """Run an SLS text as one Salt state run; {state id: StateResult}."""
    ret = modules.state.high(high_data(sls_text), test=test)
    return {r.id: r for r in ret}
