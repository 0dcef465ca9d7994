{#- The last state of a highstate: p_glance-api started on exactly one node (active-active: on every
    node where it can run; bounded wait), or a failure naming why (target-role Stopped, unmanaged, maintenance, failed or banned everywhere) and
    the command that fixes it; nothing is fixed here. Under maintenance-mode=true it succeeds and
    says nothing was checked. Every controller checks; none writes. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}
{%- if glance_ha.cluster.manage %}

glance_ha-cluster-health:
  crm.resource_running:
    - name: {{ glance_ha.cluster.resource }}
    - timeout: 120
    - order: last
{%- endif %}
