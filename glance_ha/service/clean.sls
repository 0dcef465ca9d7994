{#- glance_ha.service only stopped and disabled the distribution's glance-api service; cleaning leaves it
    so: starting glance-api outside Pacemaker is the operator's decision. Nothing to remove. #}
glance_ha-distro-service-clean:
  test.nop:
    - name: the distribution's glance-api service is left stopped and disabled
