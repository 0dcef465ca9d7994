"""
The one runner of the Pacemaker command-line tools (``cibadmin``, ``crm_verify``, ``crm_diff``,
``crm_resource``, ``crm_mon``, ``crmadmin``, ``crm_node``): each tool found on PATH, the environment
passed through unchanged (``CIB_file`` included), its error output masked with THE rule of
:mod:`glance_ha_secrets`. XML goes on stdin or in 0600 files of a private directory
(:mod:`glance_ha_files`), never on a command line.

No Salt dunders: ``_modules/crm.py`` calls it through ``__utils__`` and turns its errors
(:class:`ToolError`, a ``PcmkError``) into ``CommandExecutionError``. Siblings are imported by path
(Salt's loader gives ``_utils`` no package).
"""

import importlib.util
import logging
import os
import re
import subprocess

# pcmk_cib by path (Salt's loader gives _utils no package); its ``sibling`` keeps one copy of each.
_boot = importlib.util.spec_from_file_location(
    "_glance_ha_utils.pcmk_cib_loader", os.path.join(os.path.dirname(os.path.abspath(__file__)), "pcmk_cib.py"))
cib = importlib.util.module_from_spec(_boot)
_boot.loader.exec_module(cib)
cib = cib.sibling("pcmk_cib")
files = cib.sibling("glance_ha_files")
secrets = cib.secrets
log = logging.getLogger(__name__)
TOOL_TIMEOUT = 60


class ToolError(cib.PcmkError):
    """A tool is missing, did not answer in time, or failed; the message is already masked."""


def run(args, stdin=None, timeout=TOOL_TIMEOUT, secret_values=(), extra=()):
    """(rc, stdout, masked one-line stderr) of the tool ``args[0]``."""
    env = dict(os.environ)
    env.setdefault("LC_ALL", "C")
    log.debug("crm: running %s", " ".join(args))
    try:
        proc = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout,
                              env=env, check=False)
    except FileNotFoundError:
        raise ToolError(f"{args[0]}: command not found (install pacemaker-cli-utils)") from None
    except subprocess.TimeoutExpired:
        raise ToolError(f"{' '.join(args)}: no answer within {timeout} s") from None
    err = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", proc.stderr or "").split())
    return proc.returncode, proc.stdout, secrets.mask(err, secret_values, extra)


def answer(args, allowed=None, rcs=(0,)):
    """The one-line answer (str) of a cluster query tool; ToolError if it exits with a code not in
    ``rcs`` or says something else than one of ``allowed``."""
    rc, out, err = run(args, timeout=30)
    if rc not in rcs or (allowed and out.strip() not in allowed):
        raise ToolError(f"{' '.join(args)} failed (rc={rc}): {err or out.strip()}")
    return out.strip()


def query():
    """The whole CIB (str), status included (``cibadmin --query``)."""
    rc, out, err = run(["cibadmin", "--query"])
    if rc != 0:
        raise ToolError(f"cibadmin --query failed (rc={rc}): {err}")
    return out


def mon():
    """The cluster's status as the scheduler sees it now (``crm_mon --output-as=xml``), str."""
    rc, out, err = run(["crm_mon", "--one-shot", "--inactive", "--output-as=xml"], timeout=30)
    if rc != 0 or "<pacemaker-result" not in out:
        raise ToolError(f"crm_mon --output-as=xml failed (rc={rc}): {err or out.strip()[-300:]}")
    return out


def versions_now():
    """(admin_epoch, epoch, num_updates) of the CIB now."""
    rc, out, err = run(["cibadmin", "--query", "--xpath", "/cib", "--no-children"])
    if rc != 0:
        raise ToolError(f"cibadmin --query failed (rc={rc}): {err}")
    return cib.versions(cib.parse(out))


def verify_text(xml, secret_values=(), extra=()):
    """crm_verify a staged CIB's configuration (its status section left out):
    ``{'valid': bool, 'output': str}`` (masked)."""
    xml = cib.configuration_only(xml)
    with files.private_dir("salt-crm-") as tmp:
        path = files.write_private(tmp, "cib.xml", xml)
        rc, out, err = run(["crm_verify", "-V", "--xml-file", path], secret_values=secret_values, extra=extra)
    output = " ".join((out + " " + err).replace(path, "<staged CIB>").split())
    return {"valid": rc == 0, "output": secrets.mask(output, secret_values, extra)}


def metadata(agents, cache):
    """{agent: parsed meta-data (``crm_resource --show-metadata``), or why it is missing (str)};
    successes are kept in ``cache`` (a dict)."""
    out = {}
    for agent in sorted(agents):
        if agent not in cache:
            try:
                cib.values.split_agent(agent)
            except ValueError as exc:
                out[agent] = str(exc)
                continue
            rc, text, err = run(["crm_resource", "--show-metadata", agent])
            if rc != 0 or "<resource-agent" not in text:
                out[agent] = f"crm_resource --show-metadata: {err or 'rc=' + str(rc)}"
                continue
            try:
                cache[agent] = cib.agent_metadata(agent, text)
            except ValueError as exc:
                out[agent] = str(exc)
                continue
        out[agent] = cache[agent]
    return out


def patch(txn, target_xml, extra, attempts=3):
    """Write the staged CIB ``target_xml`` of transaction ``txn`` (:mod:`pcmk_stage`) as ONE
    ``cibadmin --patch`` made by ``crm_diff`` against the CIB that was read; on a version conflict
    that is only a status update, rebase and retry. Returns the CIB versions after the write."""
    read_xml, read_root, secret_values = txn.read_xml, txn.read, txn.secrets
    for _attempt in range(attempts):
        with files.private_dir("salt-crm-") as tmp:
            old_path = files.write_private(tmp, "read.xml", read_xml)
            new_path = files.write_private(tmp, "target.xml", target_xml)
            rc, diff, err = run(["crm_diff", "--original", old_path, "--new", new_path],
                                secret_values=secret_values, extra=extra)
        if rc == 0:
            return cib.versions(read_root)
        if rc != 1 or "<diff" not in diff:
            raise ToolError(f"Nothing written: crm_diff failed (rc={rc}): {err}")
        cib.check_patch_scope(diff)
        rc, _out, err = run(["cibadmin", "--patch", "--xml-pipe"], stdin=diff, secret_values=secret_values,
                            extra=extra)
        if rc == 0:
            return versions_now()
        fresh_xml = query()
        fresh = cib.parse(fresh_xml)
        if not cib.same_configuration(read_root, fresh):
            raise ToolError(
                "Nothing written: the CIB configuration changed since this run read it (version"
                f" {cib.fmt_versions(cib.versions(read_root))} -> {cib.fmt_versions(cib.versions(fresh))});"
                " someone else wrote it, so it is not overwritten. Re-run to reconcile against the new"
                f" configuration. (cibadmin --patch rc={rc}: {err})")
        # Only the status section moved on (num_updates): rebase the staged configuration on it.
        read_xml, read_root, target_xml = fresh_xml, fresh, cib.rebase(fresh, target_xml)
    raise ToolError(f"Nothing written: the CIB status kept changing; gave up after {attempts} attempts")
