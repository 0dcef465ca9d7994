{#- The distribution's glance packages (lookup:pkgs; [] where glance comes from pip or a container). #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}
{%- if glance_ha.lookup.pkgs %}

glance_ha-packages:
  pkg.installed:
    - pkgs: {{ glance_ha.lookup.pkgs | json }}
{%- endif %}
