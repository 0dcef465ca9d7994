{#- Everything a controller needs; cluster and Keystone (identity, endpoints) can be switched off
    in pillar (glance_ha:cluster:manage, glance_ha:endpoints:manage,
    glance_ha:keystone:service_user:manage). Compute nodes use glance_ha.nova. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}

include:
  - {{ tplroot }}.package
  - {{ tplroot }}.config
  - {{ tplroot }}.service
  - {{ tplroot }}.agent
  - {{ tplroot }}.db
{#- The service user exists before Pacemaker starts glance, so its first requests can log in. #}
{%- if glance_ha.endpoints.manage %}
  - {{ tplroot }}.identity
{%- endif %}
{%- if glance_ha.cluster.manage %}
  - {{ tplroot }}.cluster
{%- endif %}
{%- if glance_ha.endpoints.manage %}
  - {{ tplroot }}.endpoints
{%- endif %}
{%- if glance_ha.cluster.manage %}
  - {{ tplroot }}.cluster.health
{%- endif %}
