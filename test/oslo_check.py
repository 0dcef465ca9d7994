"""Run by the OpenStack venv's python (.venv-os), not by pytest: glance's own view of rendered
glance-api.conf files. Reads a JSON request on stdin, writes a JSON answer on stdout.

``{"validate": [path, ...]}`` -> ``{path: {"errors": [...], "warnings": [...]}}``: oslo-config-validator
(its own ``_validate``, with glance-api's namespaces, ``--exclude-group`` for the store sections) plus
every option glance marks ``deprecated_for_removal``; the store sections (multi-store groups the
validator cannot know) against glance_store's option lists of their driver.

``{"read": [{"path": p, "opts": [[group, option], ...]}, ...]}`` -> ``[{"group/option": value}, ...]``:
the values oslo.config reads, each option registered as a StrOpt in its group.
"""

import ast
import io
import json
import logging
import pathlib
import sys
import warnings

warnings.simplefilter("ignore")
logging.disable(logging.WARNING - 1)  # stevedore's and eventlet's chatter, not the validator's

from oslo_config import cfg, generator, validator

# glance's own generator file for glance-api.conf (etc/oslo-config-generator/glance-api.conf).
NAMESPACES = ("castellan.config", "glance.api", "glance.store", "glance.multi_store", "oslo.concurrency",
              "oslo.messaging", "oslo.db", "oslo.policy", "keystonemiddleware.auth_token", "oslo.log",
              "oslo.middleware.cors", "oslo.middleware.healthcheck", "oslo.middleware.http_proxy_to_wsgi",
              "oslo.reports")
STAGING_STORES = ("os_glance_staging_store", "os_glance_tasks_store")


def store_options():
    """{driver type: {option: deprecated_for_removal}} from glance_store's drivers."""
    from glance_store import multi_backend
    out = {}
    for group, opts in multi_backend._list_config_opts():
        if group == "file":
            out["file"] = {o.dest: bool(o.deprecated_for_removal) for o in opts}
        elif group.startswith("glance.store."):
            out[group.split(".")[2]] = {o.dest: bool(o.deprecated_for_removal) for o in opts}
    # The cinder driver imports os_brick, which only a cinder-backed glance installs: read its
    # option list from the source.
    import glance_store._drivers as drivers
    source = pathlib.Path(drivers.__file__).parent / "cinder" / "store.py"
    cinder = {}
    for node in ast.walk(ast.parse(source.read_text())):
        if (isinstance(node, ast.Call) and getattr(node.func, "attr", "").endswith("Opt")
                and node.args and isinstance(node.args[0], ast.Constant)):
            kw = {k.arg: k.value for k in node.keywords}
            dep = kw.get("deprecated_for_removal")
            cinder[node.args[0].value] = isinstance(dep, ast.Constant) and dep.value is True
    out["cinder"] = cinder
    return out


def validate(paths):
    stores = store_options()
    answer = {}
    for path in paths:
        sections = {}
        cfg.ConfigParser(path, sections).parse()
        backends = dict(item.split(":", 1) for item in
                        ",".join(sections.get("DEFAULT", {}).get("enabled_backends", [""])).split(",") if item)
        store_groups = {**{name: kind for name, kind in backends.items()},
                        **{name: "file" for name in STAGING_STORES}}
        conf = cfg.ConfigOpts()
        validator._register_cli_opts(conf)
        args = [f"--namespace={ns}" for ns in NAMESPACES] + [f"--input-file={path}"]
        args += [f"--exclude-group={group}" for group in store_groups]
        conf(args)
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        log = logging.getLogger("oslo_config.validator")
        logging.disable(logging.NOTSET)
        log.addHandler(handler)
        try:
            validator._validate(conf)
        finally:
            log.removeHandler(handler)
            logging.disable(logging.WARNING - 1)
        lines = stream.getvalue().splitlines()
        errors = [ln for ln in lines if "is not part of the sample config" in ln]
        warns = [ln for ln in lines if ln.startswith("Deprecated opt")]
        opt_data = generator._generate_machine_readable_data(
            generator._get_groups(generator._list_opts(conf.namespace)), conf)
        for section, options in sections.items():
            known = {o["name"]: o for o in opt_data["options"].get(section, {}).get("opts", [])}
            for option in options:
                if option in known and known[option].get("deprecated_for_removal"):
                    warns.append(f"{section}/{option} is deprecated for removal")
        for group, kind in store_groups.items():
            for option in sections.get(group, {}):
                if option not in stores[kind]:
                    errors.append(f"{group}/{option} is not an option of glance_store's {kind} driver")
                elif stores[kind][option]:
                    warns.append(f"{group}/{option} is deprecated for removal ({kind} driver)")
        answer[path] = {"errors": errors, "warnings": warns, "sections": sorted(sections)}
    return answer


def read(requests):
    out = []
    for request in requests:
        conf = cfg.ConfigOpts()
        for group, option in request["opts"]:
            conf.register_opt(cfg.StrOpt(option), group=None if group == "DEFAULT" else group)
        conf([], default_config_files=[request["path"]])
        out.append({f"{group}/{option}": conf[option] if group == "DEFAULT" else conf[group][option]
                    for group, option in request["opts"]})
    return out


if __name__ == "__main__":
    req = json.load(sys.stdin)
    json.dump(validate(req["validate"]) if "validate" in req else read(req["read"]), sys.stdout)
