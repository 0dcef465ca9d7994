{#- The distribution's own glance-api service stopped and disabled: Pacemaker alone starts glance-api.
    Where there is no service manager (containers), or the distribution ships no glance-api service
    (pip or WSGI installs), there is nothing to stop. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}
{%- set look = glance_ha.lookup %}

include:
  - {{ tplroot }}.package
{%- if look.service and grains.get('init', 'unknown') not in ('unknown', '') and salt['service.available'](look.service) %}

glance_ha-distro-service:
  service.dead:
    - name: {{ look.service }}
    - enable: false
{%- if look.pkgs %}
    - require:
      - pkg: glance_ha-packages
{%- endif %}
{%- endif %}
