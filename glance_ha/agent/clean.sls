{#- Removes the glance-api OCF resource agent (after glance_ha.cluster.clean removed the resources
    that use it, when glance_ha.clean runs both). #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}

glance_ha-agent-clean:
  file.absent:
    - name: {{ glance_ha.lookup.ocf_dir }}/glance-api
