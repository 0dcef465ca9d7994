{#- glance_ha.service stopped, disabled and (systemd) masked the distribution's glance-api service;
    cleaning leaves it so: starting glance-api outside Pacemaker is the operator's decision
    (systemctl unmask / update-rc.d enable). Nothing to remove. #}
glance_ha-distro-service-clean:
  test.nop:
    - name: the distribution's glance-api service is left stopped and disabled
