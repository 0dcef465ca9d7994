"""The glance-ha lab (see doc/lab.md): MariaDB, RabbitMQ and Keystone (lab.services), three Pacemaker
controllers in namespaces (lab.lab.Lab) and the client that talks to them (lab.client).

The lab masks secrets and writes private files with the formula's own pure helpers in `_utils/`
(glance_ha_secrets, glance_ha_files), imported as plain modules: this is the one place that puts
that directory on sys.path.
"""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "_utils") not in sys.path:
    sys.path.append(str(REPO / "_utils"))
VENV = Path(os.environ.get("LAB_VENV", REPO / ".venv"))          # Salt (master, minions, the CLI)
VENV_OS = Path(os.environ.get("LAB_VENV_OS", REPO / ".venv-os"))  # keystone, glance, gunicorn
