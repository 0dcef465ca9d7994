{#- Removes the files glance_ha.config wrote: glance-api.conf and the agent's credentials file.
    The store, staging, tasks and lock directories stay: they hold the image data. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}
{%- set look = glance_ha.lookup %}
{%- if glance_ha.cluster.manage %}

include:
  - {{ tplroot }}.cluster.clean
{%- endif %}

glance_ha-config-file-clean:
  file.absent:
    - name: {{ look.config_file }}
{%- if glance_ha.cluster.manage %}
    - require:
      - crm: glance_ha-cluster-clean-settled
{%- endif %}

glance_ha-ocf-credentials-clean:
  file.absent:
    - name: {{ look.credentials_file }}
{%- if glance_ha.cluster.manage %}
    - require:
      - crm: glance_ha-cluster-clean-settled
{%- endif %}
