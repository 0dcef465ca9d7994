{#- Pacemaker resources of glance-api (only if glance_ha:cluster:manage):
      the VIP(s) (ocf:heartbeat:IPaddr2), p_glance-api (ocf:openstack:glance-api),
      constraints: glance-api runs where the internal VIP runs (the public VIP too) and starts after
      the VIP(s); rsc_defaults resource-stickiness, so a recovered node does not take it back.
    Through the crm states: one CIB read and ONE crm_verify-validated write per run (the commit
    state below), by the writer only (glance_ha:cluster:writer, or the Pacemaker DC).
    Constraints rather than a group: the primitives stay top-level objects under their pillar ids,
    each VIP is constrained on its own, and dropping the public VIP removes exactly its primitive
    and its two constraints. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha with context %}
{%- set cl = glance_ha.cluster %}
{%- set look = glance_ha.lookup %}
{%- set vip = glance_ha.vip %}
{%- if cl.manage %}
{%-   set rsc = cl.resource %}
{%-   set int_vip = cl.vip_resources.internal %}
{%-   set pub_vip = cl.vip_resources.public %}
{%-   set vips = [('internal', int_vip, vip.internal, vip.get('internal_netmask', vip.cidr_netmask))] %}
{%-   if vip.public %}
{%-     do vips.append(('public', pub_vip, vip.public, vip.get('public_netmask', vip.cidr_netmask))) %}
{%-   endif %}
{%-   set staged = [] %}

{#- The agent must be installed (its meta-data validates p_glance-api's parameters) and
    glance-api.conf is what resource_restarted watches. #}
include:
  - {{ tplroot }}.agent
  - {{ tplroot }}.config
{%-   for kind, vip_id, address, netmask in vips %}
{%-     set vip_params = {'ip': address, 'cidr_netmask': netmask} %}
{%-     if vip.nic %}
{%-       do vip_params.update({'nic': vip.nic}) %}
{%-     endif %}

glance_ha-cluster-vip-{{ kind }}:
  crm.primitive_present:
    - name: {{ vip_id }}
    - agent: ocf:heartbeat:IPaddr2
    - params: {{ vip_params | json }}
    - ops:
      - {name: monitor, interval: 10s, timeout: 20s}
      - {name: start, interval: 0s, timeout: 20s}
      - {name: stop, interval: 0s, timeout: 20s}
    - writer: {{ cl.writer | json }}
{%-     do staged.append('glance_ha-cluster-vip-' ~ kind) %}
{%-   endfor %}
{%-   set params = {'config': look.config_file, 'monitor_level': cl.monitor_level,
                    'credentials_file': look.credentials_file} %}
{%-   do params.update(look.get('agent_params') or {}) %}

glance_ha-cluster-resource:
  crm.primitive_present:
    - name: {{ rsc }}
    - agent: ocf:openstack:glance-api
    - params: {{ params | json }}
    - meta: {{ cl.meta | json }}
    - ops:
      - {name: monitor, interval: {{ cl.monitor.interval | json }}, timeout: {{ cl.monitor.timeout | json }}}
      - {name: start, interval: 0s, timeout: 60s}
      - {name: stop, interval: 0s, timeout: 60s}
    - secret_params: {{ cl.get('secret_params', []) | json }}
    - writer: {{ cl.writer | json }}
    - require:
      - file: glance_ha-agent
{%-   do staged.append('glance_ha-cluster-resource') %}

glance_ha-cluster-colocation-internal:
  crm.colocation_present:
    - name: col_{{ rsc }}_with_{{ int_vip }}
    - rsc: {{ rsc }}
    - with_rsc: {{ int_vip }}
    - score: INFINITY
    - writer: {{ cl.writer | json }}
    - require:
      - crm: glance_ha-cluster-resource
      - crm: glance_ha-cluster-vip-internal

glance_ha-cluster-order-internal:
  crm.order_present:
    - name: ord_{{ int_vip }}_before_{{ rsc }}
    - first: {{ int_vip }}
    - then: {{ rsc }}
    - kind: Mandatory
    - writer: {{ cl.writer | json }}
    - require:
      - crm: glance_ha-cluster-resource
      - crm: glance_ha-cluster-vip-internal
{%-   do staged.extend(['glance_ha-cluster-colocation-internal', 'glance_ha-cluster-order-internal']) %}
{%-   if vip.public %}

glance_ha-cluster-colocation-public:
  crm.colocation_present:
    - name: col_{{ pub_vip }}_with_{{ int_vip }}
    - rsc: {{ pub_vip }}
    - with_rsc: {{ int_vip }}
    - score: INFINITY
    - writer: {{ cl.writer | json }}
    - require:
      - crm: glance_ha-cluster-vip-public
      - crm: glance_ha-cluster-vip-internal

glance_ha-cluster-order-public:
  crm.order_present:
    - name: ord_{{ pub_vip }}_before_{{ rsc }}
    - first: {{ pub_vip }}
    - then: {{ rsc }}
    - kind: Mandatory
    - writer: {{ cl.writer | json }}
    - require:
      - crm: glance_ha-cluster-resource
      - crm: glance_ha-cluster-vip-public
{%-     do staged.extend(['glance_ha-cluster-colocation-public', 'glance_ha-cluster-order-public']) %}
{%-   else %}
{#- No public VIP (any more): its constraints and primitive go, in the same transaction. #}
{%-     for kind, obj in [('colocation', 'col_' ~ pub_vip ~ '_with_' ~ int_vip),
                          ('order', 'ord_' ~ pub_vip ~ '_before_' ~ rsc), ('vip', pub_vip)] %}

glance_ha-cluster-{{ kind }}-public-absent:
  crm.absent:
    - name: {{ obj }}
    - writer: {{ cl.writer | json }}
{%-       do staged.append('glance_ha-cluster-' ~ kind ~ '-public-absent') %}
{%-     endfor %}
{%-   endif %}

glance_ha-cluster-stickiness:
  crm.property_present:
    - type: rsc_defaults
    - properties:
        resource-stickiness: {{ cl.stickiness | json }}
    - writer: {{ cl.writer | json }}
{%-   do staged.append('glance_ha-cluster-stickiness') %}

{#- The one write of the run: everything above, validated with crm_verify, in one cibadmin --patch. #}
glance_ha-cluster-commit:
  crm.commit:
    - writer: {{ cl.writer | json }}
    - require:
{%-   for state_id in staged %}
      - crm: {{ state_id }}
{%-   endfor %}

{#- glance-api.conf changed: restart glance-api where it is active (each node only its own copy),
    then wait for the cluster to settle. #}
glance_ha-cluster-restart:
  crm.resource_restarted:
    - name: {{ rsc }}
    - timeout: 120
    - onchanges:
      - glance_ha: glance_ha-config-file
    - require:
      - crm: glance_ha-cluster-commit
{%- endif %}
