{#- Removes the packages glance_ha.package installed (their configuration files stay, as with any
    package removal; the image store is not touched). #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}
{%- if glance_ha.lookup.pkgs %}

glance_ha-packages-clean:
  pkg.removed:
    - pkgs: {{ glance_ha.lookup.pkgs | json }}
{%- endif %}
