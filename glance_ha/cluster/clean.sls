{#- Removes exactly the formula's Pacemaker objects (glance_ha/cluster/objects.jinja): the VIP(s),
    p_glance-api, their constraints and the rsc_defaults resource-stickiness, in ONE transaction by
    the writer only. Nothing else: a constraint of the site's own that still names one of these
    resources makes the run fail with nothing written. Every node then waits (bounded) until no
    resource uses the agent and the cluster has settled: agent.clean and config.clean require that,
    so no node pulls the agent or glance-api.conf from under a glance-api that is still running. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}
{%- from tplroot ~ "/cluster/objects.jinja" import owned, owned_properties, owner %}
{%- set objects = [] %}
{%- for obj in owned %}
{%-   do objects.append({'absent': obj}) %}
{%- endfor %}
{%- for type, names in owned_properties | dictsort %}
{%-   do objects.append({'property_absent': type, 'type': type, 'properties': names}) %}
{%- endfor %}

glance_ha-cluster-clean:
  crm.configured:
    - objects: {{ objects | json }}
    - writer: {{ glance_ha.cluster.writer | json }}
    - secret_params: {{ glance_ha.cluster.get('secret_params', []) | json }}
    - owner: {{ owner }}

glance_ha-cluster-clean-settled:
  crm.agent_unused:
    - name: ocf:openstack:glance-api
    - timeout: 120
    - require:
      - crm: glance_ha-cluster-clean
