{#- Pacemaker resources of glance-api (only if glance_ha:cluster:manage): the VIP(s)
    (ocf:heartbeat:IPaddr2), p_glance-api (ocf:openstack:glance-api), their constraints and
    rsc_defaults resource-stickiness (glance_ha/cluster/objects.jinja), as ONE crm.configured
    state: one CIB read and one crm_verify-validated write per run, by the writer only
    (glance_ha:cluster:writer, or the Pacemaker DC). #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}
{%- from tplroot ~ "/cluster/objects.jinja" import objects, owner %}
{%- set cl = glance_ha.cluster %}
{%- if cl.manage %}

{#- The agent must be installed (its meta-data validates p_glance-api's parameters) and
    glance-api.conf is what the restart watches. #}
include:
  - {{ tplroot }}.agent
  - {{ tplroot }}.config

glance_ha-cluster:
  crm.configured:
    - objects: {{ objects | json }}
    - writer: {{ cl.writer | json }}
    - secret_params: {{ cl.get('secret_params', []) | json }}
    - owner: {{ owner }}
    {#- Under test=True the agent may not be installed yet: glance_ha-agent installs it. #}
    - agent_sources:
        ocf:openstack:glance-api: {{ ('state glance_ha-agent, ' ~ cl.agent_source) | json }}
    - require:
      - file: glance_ha-agent

{#- glance-api.conf changed: restart glance-api where it is active (each node only its own copy),
    then wait for the cluster to settle. #}
glance_ha-cluster-restart:
  crm.resource_restarted:
    - name: {{ cl.resource }}
    - timeout: 120
    - onchanges:
      - glance_ha: glance_ha-config-file
    - require:
      - crm: glance_ha-cluster
{%- endif %}
