{#- The glance-api OCF resource agent, where Pacemaker looks for ocf:openstack:glance-api. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}
{%- set cluster = glance_ha.cluster %}

glance_ha-agent:
  file.managed:
    - name: {{ glance_ha.lookup.ocf_dir }}/glance-api
    - source: {{ cluster.agent_source }}
{%- if cluster.agent_source_hash %}
    - source_hash: {{ cluster.agent_source_hash }}
{%- endif %}
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: true
