# The lab's pillar top file (lab/provision.py points the master's pillar_roots here and at the run's own
# pillar dir, which holds lab_run.yaml: the addresses and the passwords generated for this run).
base:
  'ctl*':
    - glance_ha
