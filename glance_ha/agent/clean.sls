{#- Removes the glance-api OCF resource agent (with a managed cluster, once glance_ha.cluster.clean has
    removed the resources that use it and the cluster has settled). #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}
{%- if glance_ha.cluster.manage %}

include:
  - {{ tplroot }}.cluster.clean
{%- endif %}

glance_ha-agent-clean:
  file.absent:
    - name: {{ glance_ha.lookup.ocf_dir }}/glance-api
{%- if glance_ha.cluster.manage %}
    - require:
      - crm: glance_ha-cluster-clean-settled
{%- endif %}
