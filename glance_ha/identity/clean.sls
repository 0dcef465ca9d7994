{#- The service user is kept: other services, regions or a second glance may log in with it, and
    deleting a Keystone user revokes its tokens and role assignments at once. Nothing is written; the
    state says how to remove it by hand. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}
{%- set user = glance_ha.keystone.service_user %}
{%- if glance_ha.endpoints.manage and user.manage %}

glance_ha-keystone-service-user-clean:
  test.show_notification:
    - text: >-
        Keystone user {{ user.username }} (domain {{ user.user_domain_name }}) and its roles on project
        {{ user.project_name }} are kept (other services may share them); remove them by hand if nothing
        uses them: openstack user delete --domain {{ user.user_domain_name }} {{ user.username }}
{%- endif %}
