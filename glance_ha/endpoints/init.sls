{#- Keystone catalog: the `image` service (glance_ha:endpoints:service_name, found by type) and its
    public, internal and admin endpoints in one region, reconciled in place (ids kept, duplicates
    refused, nothing else touched); one writer. glance_ha.endpoints.clean removes them again. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha with context %}
{%- from tpldir ~ "/catalog.jinja" import service, auth %}
{%- if glance_ha.endpoints.manage %}

glance_ha-keystone-service:
  keystone_catalog.service_present:
    - name: {{ glance_ha.endpoints.service_name | json }}
    - service_type: {{ service.type }}
    - description: {{ service.description }}
    - enabled: true
    - name_key: {{ service.name_key }}
{{- auth(glance_ha) }}

glance_ha-keystone-endpoints:
  keystone_catalog.endpoints_present:
    - name: {{ glance_ha.endpoints.service_name | json }}
    - service_type: {{ service.type }}
    - region: {{ glance_ha.keystone.region | json }}
    - public: {{ glance_ha.endpoints.public | json }}
    - internal: {{ glance_ha.endpoints.internal | json }}
    - admin: {{ glance_ha.endpoints.admin | json }}
    - enabled: true
    - name_key: {{ service.name_key }}
{{- auth(glance_ha) }}
    - require:
      - keystone_catalog: glance_ha-keystone-service
{%- endif %}
