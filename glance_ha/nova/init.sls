{#- Compute nodes (and any nova host): [glance] api_servers -> the internal VIP. Only that one key of
    nova.conf is edited; the rest of the operator's file is left as it is. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/nova/map.jinja" import glance_ha %}

glance_ha-nova-api-servers:
  glance_ha.ini_option_present:
    - name: {{ glance_ha.nova.config }}
    - section: glance
    - key: api_servers
    - value: {{ glance_ha.endpoints.internal }}
