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
    glance-api.conf is what the running glance-api is compared with. #}
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

{#- On every run (not only when a file changed in this run): where glance-api is active on this node
    and its configuration files differ from what it loaded, reload it gracefully (no request lost);
    deferred, not failed, under maintenance-mode or an unmanaged resource. A rotated service-user
    password reaches glance only once Keystone accepts it. #}
glance_ha-cluster-running-config:
  glance_ha.running_config:
    - name: {{ cl.resource }}
    - timeout: 120
{%- if glance_ha.endpoints.manage and glance_ha.keystone.service_user.manage %}
    - service_user:
        name: {{ glance_ha.keystone.service_user.username | json }}
        domain: {{ glance_ha.keystone.service_user.user_domain_name | json }}
        password_key: glance_ha:keystone:service_user:password
    - keystone:
        profile: glance_ha:keystone:admin
        auth_url: {{ glance_ha.keystone.auth_url | json }}
        username: {{ glance_ha.keystone.admin.username | json }}
        project_name: {{ glance_ha.keystone.admin.project_name | json }}
        user_domain_name: {{ glance_ha.keystone.admin.user_domain_name | json }}
        project_domain_name: {{ glance_ha.keystone.admin.project_domain_name | json }}
{%- endif %}
    - require:
      - crm: glance_ha-cluster
      - glance_ha: glance_ha-config-file
{%- endif %}
