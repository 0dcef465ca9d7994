{#- The lab's glance_ha pillar. Addresses and passwords are not in the repo: lab/provision.py writes them
    for each run to <run dir>/pillar/lab_run.yaml (0600), which is imported here. The services run in
    the svc namespace (MariaDB 3306, RabbitMQ 5672, Keystone 5000 on one address); glance 33 comes from
    pip (.venv-os) and runs under gunicorn (or Debian's uwsgi when lab_run.yaml says wsgi_server: uwsgi),
    so the formula installs no package (lookup:pkgs []). Debian's glance-api (glance 25) is installed all
    the same (scripts/bootstrap, on the host the controllers share) and started in every controller before
    the first highstate: glance_ha.service stops and disables it (lookup:service, Debian's default
    glance-api). The controllers start bare: glance_ha.db creates the database and its account with the
    MariaDB administrator account the lab made (database:create). #}
{%- import_yaml 'lab_run.yaml' as run %}
glance_ha:
  vip:
    internal: {{ run.vip_internal }}
    public: {{ run.vip_public }}
    cidr_netmask: {{ run.cidr_netmask }}
    nic: {{ run.nic }}
  api:
    port: 9292
    workers: 1
  database:
    host: {{ run.svc }}
    password: {{ run.db_password | json }}
    create: true
    admin:
      username: {{ run.db_admin_user }}
      password: {{ run.db_admin_password | json }}
  messaging:
    driver: messagingv2
    hosts:
      - {{ run.svc }}
    user: {{ run.rabbit_user }}
    password: {{ run.rabbit_password | json }}
  keystone:
    auth_url: http://{{ run.svc }}:5000/v3
    region: RegionOne
    admin:
      username: admin
      password: {{ run.admin_password | json }}
      project_name: admin
    service_user:
      username: glance
      password: {{ run.glance_password | json }}
      project_name: service
  store:
    backend: file
    path: /var/lib/glance/images
    # a download on a hung share fails after 10 s (test/ha/test_store.py measures it)
    timeout: 10
  cluster:
    mode: {{ run.get('mode', 'active-passive') }}
    monitor:
      interval: 10s
      timeout: 30s
  config:
    DEFAULT:
      # glance 33's metadata definitions (glance_ha.db loads them once)
      metadata_source_path: {{ run.venv_os }}/etc/glance/metadefs
    paste_deploy:
      # glance 33's own paste pipeline (the distribution's /etc/glance/glance-api-paste.ini is glance 25's)
      config_file: {{ run.venv_os }}/etc/glance/glance-api-paste.ini
  lookup:
    pkgs: []
    glance_manage: {{ run.venv_os }}/bin/glance-manage
    agent_params:
{%- if run.get('wsgi_server') == 'uwsgi' %}
      # Debian's uwsgi with the venv as its Python home (both use Debian's python3)
      server: uwsgi
      server_binary: /usr/bin/uwsgi
      server_options: --plugin python3 --virtualenv {{ run.venv_os }}
{%- else %}
      server: gunicorn
      server_binary: {{ run.gunicorn }}
{%- endif %}
