{#- Keystone service identity: the user glance-api's [keystone_authtoken] logs in with
    (keystone:service_user), in its domain, with its roles on the service project (created if missing);
    created or updated in place (ids kept), a changed password set on the existing user; one writer.
    The password is read at run time from its pillar key, never rendered. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}
{%- from tplroot ~ "/endpoints/catalog.jinja" import auth %}
{%- set user = glance_ha.keystone.service_user %}
{%- if glance_ha.endpoints.manage and user.manage %}

glance_ha-keystone-service-user:
  keystone_catalog.user_present:
    - name: {{ user.username | json }}
    - password_key: glance_ha:keystone:service_user:password
    - domain: {{ user.user_domain_name | json }}
    - project: {{ user.project_name | json }}
    - project_domain: {{ user.project_domain_name | json }}
    - roles: {{ user.roles | json }}
    - enabled: true
{{- auth(glance_ha) }}
{%- endif %}
