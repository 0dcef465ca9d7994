{#- Removes what glance_ha made on a controller, in this order: the image service and endpoints it
    registered in Keystone (endpoints:manage), its Pacemaker objects (cluster:manage), the OCF agent,
    the files it wrote (glance-api.conf, the credentials file). Kept: the image store (store:path) and
    glance's state directories (they hold the images), the packages (glance_ha.package.clean removes
    them), the distribution's glance-api service (stays stopped), glance's database (glance_ha.db.clean
    drops nothing). Compute nodes: glance_ha.nova.clean. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}

include:
{%- if glance_ha.endpoints.manage %}
  - {{ tplroot }}.endpoints.clean
  - {{ tplroot }}.identity.clean
{%- endif %}
{%- if glance_ha.cluster.manage %}
  - {{ tplroot }}.cluster.clean
{%- endif %}
  - {{ tplroot }}.agent.clean
  - {{ tplroot }}.config.clean
  - {{ tplroot }}.service.clean
  - {{ tplroot }}.db.clean
