{#- glance-api.conf, the store, staging, tasks, lock and log directories and the agent's credentials file
    (for the api monitor level; rendered whenever the pillar has the credentials). #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}
{%- set look = glance_ha.lookup %}

include:
  - {{ tplroot }}.package

{%- set conf_dirs = [look.config_dir] %}
{%- for path in (look.config_file, look.credentials_file) %}
{%-   set parent = salt['file.dirname'](path) %}
{%-   if parent not in conf_dirs %}
{%-     do conf_dirs.append(parent) %}
{%-   endif %}
{%- endfor %}

glance_ha-config-dir:
  file.directory:
    - names: {{ conf_dirs | json }}
    - makedirs: true
{%- if look.pkgs %}
    - require:
      - pkg: glance_ha-packages
{%- endif %}

{%- set store = glance_ha.store %}
{%- set shared = [store.staging_path, store.tasks_path] %}
{%- if glance_ha.cache.enabled %}
{%-   do shared.append(glance_ha.cache.path) %}
{%- endif %}
{%- if store.backend == 'file' and store.path != store.share %}
{%-   do shared.insert(0, store.path) %}
{%- endif %}
{%- set dirs = [look.lock_dir] %}
{%- if store.share %}

{#- The share is checked (mounted, answering, glance's by number), never created or chowned: on a
    node where it is not mounted, nothing lands on local disk. #}
glance_ha-share:
  glance_ha.share_present:
    - name: {{ store.share }}
    - user: {{ look.user }}
    - group: {{ look.group }}
    - dirs: {{ shared | json }}
    - timeout: {{ store.check_timeout }}
{%-   if look.pkgs %}
    - require:
      - pkg: glance_ha-packages
{%-   endif %}
{%- else %}
{%-   do dirs.extend(shared) %}
{%- endif %}
{%- set log_dir = salt['file.dirname'](glance_ha.log.file) %}
{%- if glance_ha.log.destination == 'file' %}
{%-   do dirs.append(log_dir) %}
{%- endif %}
{%- for dir in dirs %}

glance_ha-dir-{{ dir }}:
  file.directory:
    - name: {{ dir }}
    - user: {{ look.user }}
    - group: {{ look.group }}
    - mode: '0750'
    - makedirs: true
{%- if look.pkgs %}
    - require:
      - pkg: glance_ha-packages
{%- endif %}
{%- endfor %}

{%- if glance_ha.log.destination == 'file' %}

{#- Made here, as glance's: a tool run as root with this config (glance-manage) would otherwise create
    it root's, and glance-api, running as glance, could not open it and would not start. #}
glance_ha-log-file:
  file.managed:
    - name: {{ glance_ha.log.file }}
    - user: {{ look.user }}
    - group: {{ look.group }}
    - mode: '0640'
    - replace: false
    - require:
      - file: glance_ha-dir-{{ log_dir }}
{%- endif %}

glance_ha-config-file:
  glance_ha.config_managed:
    - name: {{ look.config_file }}
    - source: salt://{{ tplroot }}/templates/glance-api.conf.jinja
    - user: root
    - group: {{ look.group }}
    - mode: '0640'
    - require:
      - file: glance_ha-config-dir

{#- The agent's credentials file (api monitor level) is rendered on every node whenever the pillar has
    the service user's credentials, whatever the level: every node has it before any CIB asks for
    `api`, and it goes only with glance_ha.config.clean, after the cluster objects. #}
{%- if glance_ha.keystone.service_user.password and glance_ha.keystone.auth_url %}

glance_ha-ocf-credentials:
  glance_ha.config_managed:
    - name: {{ look.credentials_file }}
    - source: salt://{{ tplroot }}/templates/ocf-credentials.jinja
    - user: root
    - group: root
    - mode: '0600'
    - require:
      - file: glance_ha-config-dir
{%- endif %}
