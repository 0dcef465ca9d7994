{#- Removes what glance_ha.endpoints registered in the Keystone catalog: the public, internal and
    admin endpoints of the `image` service `glance` in the formula's region, then the service, unless
    it still has endpoints in another region (Keystone would delete them with it). Nothing else in
    the catalog is written; the region stays. One writer, as for glance_ha.endpoints. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha with context %}
{%- from tpldir ~ "/catalog.jinja" import service, auth %}
{%- if glance_ha.endpoints.manage %}

glance_ha-keystone-endpoints-clean:
  keystone_catalog.endpoints_absent:
    - name: {{ glance_ha.endpoints.service_name | json }}
    - service_type: {{ service.type }}
    - region: {{ glance_ha.keystone.region | json }}
{{- auth(glance_ha) }}

glance_ha-keystone-service-clean:
  keystone_catalog.service_absent:
    - name: {{ glance_ha.endpoints.service_name | json }}
    - service_type: {{ service.type }}
{{- auth(glance_ha) }}
    - require:
      - keystone_catalog: glance_ha-keystone-endpoints-clean
{%- endif %}
