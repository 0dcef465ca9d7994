{#- The distribution's glance-api never serves: Pacemaker alone starts glance-api.
    Before the package is installed, its own start is prevented, so that its postinst (update-rc.d
    defaults, invoke-rc.d start) cannot start it:
      - systemd: the unit is masked (a mask made by the administrator survives deb-systemd-helper);
      - sysvinit: the service gets disabled rc.d links (K only, as `update-rc.d defaults-disabled`
        makes them); update-rc.d keeps existing links and invoke-rc.d starts nothing without an S
        link. Other packages' daemons are not affected (no policy-rc.d).
    Where it already runs, it is stopped and disabled, before and after the package state. All checks
    happen at run time (service.dead looks for the service when it runs). Where there is no service
    manager (init grain unknown: containers), or no distribution service (lookup:service ''), there
    is nothing to do. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}
{%- set look = glance_ha.lookup %}
{%- set init = grains.get('init', 'unknown') %}

include:
  - {{ tplroot }}.package
{%- if look.service and init not in ('unknown', '') %}

glance_ha-distro-service-stopped:
  service.dead:
    - name: {{ look.service }}
    - enable: false
{%-   if look.pkgs %}
    - require_in:
      - pkg: glance_ha-packages
{%-   endif %}
{%-   if init == 'systemd' %}

glance_ha-distro-service-masked:
  service.masked:
    - name: {{ look.service }}
    - require:
      - service: glance_ha-distro-service-stopped
{%-     if look.pkgs %}
    - require_in:
      - pkg: glance_ha-packages
{%-     endif %}
{%-   else %}

glance_ha-distro-service-disabled:
  file.symlink:
    - names:
{%-     for level in ['0', '1', '2', '3', '4', '5', '6'] %}
      - /etc/rc{{ level }}.d/K01{{ look.service }}
{%-     endfor %}
    - target: ../init.d/{{ look.service }}
    - makedirs: true
    {#- Not yet installed and no start link left: once installed, service.dead disables it. #}
    - unless: test -e /etc/init.d/{{ look.service }} || ls /etc/rc?.d/S[0-9][0-9]{{ look.service }}
    - require:
      - service: glance_ha-distro-service-stopped
{%-     if look.pkgs %}
    - require_in:
      - pkg: glance_ha-packages
{%-     endif %}
{%-   endif %}

glance_ha-distro-service:
  service.dead:
    - name: {{ look.service }}
    - enable: false
{%-   if look.pkgs %}
    - require:
      - pkg: glance_ha-packages
{%-   endif %}
{%- endif %}
