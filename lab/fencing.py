"""Fencing in the lab (opt-in; the lab runs with stonith-enabled=false otherwise).

enable_fencing() installs the lab's fence agent (the file lab/fence_lab) as /usr/sbin/fence_lab in
every controller (a read-only overlay of /usr/sbin in its mount namespace; the host's /usr/sbin is
not touched), creates a stonith primitive for it and sets stonith-enabled=true. When Pacemaker fences
a node, the agent drops a request file in <run>/fence; a watcher thread of the Python process that
owns the lab powers the node off (crash(): SIGKILL of its PID 1, deletion of its netns) and answers.
`reboot` is carried out as `off` (the node stays down until start()), which Pacemaker accepts as a
completed fence. Only while that process lives (tests, benchmarks).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from lab.procs import LabError

AGENT_SOURCE = Path(__file__).resolve().parent / "fence_lab"


class Fencing:
    """STONITH with fence_lab (needs Nodes: exec, live_nodes, crash; and self._fencer*, self.fenced)."""

    @property
    def fence_dir(self) -> Path:
        return self.run_dir / "fence"

    @property
    def fence_bin(self) -> Path:
        return self.run_dir / "fence-bin"

    @property
    def fencing_enabled(self) -> bool:
        return self._fencer is not None

    def _write_fence_agent(self) -> None:
        self.fence_bin.mkdir(exist_ok=True)
        agent = self.fence_bin / "fence_lab"
        agent.write_text(AGENT_SOURCE.read_text().replace("@REQDIR@", str(self.fence_dir)))
        agent.chmod(0o755)

    def _install_fence_agent(self, n: int) -> None:
        """/usr/sbin/fence_lab inside controller N (read-only overlay of /usr/sbin in its mounts)."""
        if self.exec(n, ["test", "-x", "/usr/sbin/fence_lab"], check=False).returncode != 0:
            self.exec(n, ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={self.fence_bin}:/usr/sbin",
                          "/usr/sbin"])

    def enable_fencing(self, device: str = "st_lab") -> None:
        """Turn STONITH on with fence_lab; disable_fencing() restores stonith-enabled=false."""
        if self._fencer is not None:
            return
        self.fence_dir.mkdir(mode=0o700, exist_ok=True)
        self._write_fence_agent()
        self._fencer_stop.clear()
        self._fencer = threading.Thread(target=self._fence_watch, name="lab-fencer", daemon=True)
        self._fencer.start()
        for n in self.live_nodes():
            self._install_fence_agent(n)
        hosts = " ".join(self.node_name(n) for n in self.node_range)
        xml = (f'<primitive id="{device}" class="stonith" type="fence_lab">'
               f'<instance_attributes id="{device}-ia">'
               f'<nvpair id="{device}-ia-hosts" name="pcmk_host_list" value="{hosts}"/>'
               f'<nvpair id="{device}-ia-check" name="pcmk_host_check" value="static-list"/>'
               f'</instance_attributes><operations>'
               f'<op id="{device}-monitor-60s" name="monitor" interval="60s" timeout="20s"/>'
               f'</operations></primitive>')
        n = self.live_nodes()[0]
        if self.exec(n, ["cibadmin", "-Q", "--xpath", f"//primitive[@id='{device}']"],
                     check=False).returncode:
            self.exec(n, ["cibadmin", "--create", "-o", "resources", "--xml-text", xml])
        self._stonith_enabled(n, "true")

    def _stonith_enabled(self, n: int, value: str) -> None:
        self.exec(n, ["crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--update", value])

    def disable_fencing(self, device: str = "st_lab") -> None:
        n = self.live_nodes()[0]
        self._stonith_enabled(n, "false")
        self.exec(n, ["cibadmin", "--delete", "--xml-text", f'<primitive id="{device}"/>'], check=False)
        self._fencer_stop.set()
        if self._fencer is not None:
            self._fencer.join(timeout=5)
        self._fencer = None

    def _fence_watch(self) -> None:
        while not self._fencer_stop.is_set():
            for req in sorted(self.fence_dir.glob("*.req")):
                node = req.name[:-len(".req")]
                req.unlink(missing_ok=True)
                try:
                    n = self.node_number(node)
                    self.log(f"lab: fencing {node} (power off)")
                    self.crash(n)
                    self.fenced.append((node, time.monotonic()))
                    (self.fence_dir / f"{node}.done").write_text("ok\n")
                except (ValueError, LabError, OSError) as exc:  # the agent times out and reports failure
                    self.log(f"lab: fencing {node} failed: {exc}")
            self._fencer_stop.wait(0.1)
