{#- Keystone catalog: the `image` service `glance` and its public, internal and admin endpoints in one
    region, reconciled in place (ids kept, duplicates refused, nothing else touched). One writer: the
    minion glance_ha:cluster:writer names ('' = the Pacemaker DC) when the cluster is managed, else every
    minion that applies this SLS writes.
    The admin password is not rendered here: the states read it at run time from the pillar key
    glance_ha:keystone:admin (profile), so `state.show_sls` and the low state never show it. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha with context %}
{%- if glance_ha.endpoints.manage %}
{%- set ks = glance_ha.keystone %}
{#- With an explicit writer the rule holds even without a managed cluster: never every node at once. #}
{%- set writer = glance_ha.cluster.writer if (glance_ha.cluster.manage or glance_ha.cluster.writer) else None %}
{%- macro auth() %}
    - writer: {{ writer | json }}
    - profile: glance_ha:keystone:admin
    - auth_url: {{ ks.auth_url | json }}
    - username: {{ ks.admin.username | json }}
    - project_name: {{ ks.admin.project_name | json }}
    - user_domain_name: {{ ks.admin.user_domain_name | json }}
    - project_domain_name: {{ ks.admin.project_domain_name | json }}
{%- endmacro %}

glance_ha-keystone-service:
  keystone_catalog.service_present:
    - name: glance
    - service_type: image
    - description: OpenStack Image
    - enabled: true
{{- auth() }}

glance_ha-keystone-endpoints:
  keystone_catalog.endpoints_present:
    - name: glance
    - service_type: image
    - region: {{ ks.region | json }}
    - public: {{ glance_ha.endpoints.public | json }}
    - internal: {{ glance_ha.endpoints.internal | json }}
    - admin: {{ glance_ha.endpoints.admin | json }}
    - enabled: true
{{- auth() }}
    - require:
      - keystone_catalog: glance_ha-keystone-service
{%- endif %}
