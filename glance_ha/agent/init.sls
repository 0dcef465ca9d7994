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
{%- if cluster.manage %}

{#- A controller that joins after p_glance-api exists was probed before it had the agent (rc 5, "not
    installed") and would stay excluded: refresh the resource on this node only, once the agent is here. #}
glance_ha-agent-probed:
  crm.resource_probed:
    - name: {{ cluster.resource }}
    - require:
      - file: glance_ha-agent
{%- endif %}
