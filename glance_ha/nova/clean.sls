{#- Removes [glance] api_servers from nova.conf; every other line of the file stays. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/nova/map.jinja" import glance_ha %}

glance_ha-nova-api-servers-clean:
  glance_ha.ini_option_absent:
    - name: {{ glance_ha.nova.config }}
    - section: glance
    - key: api_servers
