{#- glance's database, by one writer (glance_ha:cluster:writer, '' = the Pacemaker DC): optionally the
    database and its account (database:create, with database:admin), then the schema migrated to the
    installed glance (glance-manage db check / db sync) and the metadata definitions loaded once
    (db load_metadefs), under MariaDB's named lock so that two highstates at once migrate once.
    glance-manage reads the database URL from glance-api.conf: no password is rendered here. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import glance_ha %}
{%- set db = glance_ha.database %}
{%- set look = glance_ha.lookup %}

include:
  - {{ tplroot }}.config
{%- if db.create %}

glance_ha-db-database:
  glance_db.database_present:
    - name: {{ db.name | json }}
    - user: {{ db.user | json }}
    - host: {{ db.host | json }}
    - port: {{ db.port }}
    - admin_user: {{ db.admin.username | json }}
    - user_host: {{ db.user_host | json }}
    - writer: {{ glance_ha.cluster.writer | json }}
    - profile: glance_ha:database
{%- endif %}
{%- if db.sync %}

glance_ha-db-schema:
  glance_db.synced:
    - name: {{ look.config_file }}
    - glance_manage: {{ look.glance_manage }}
    - writer: {{ glance_ha.cluster.writer | json }}
    - lock_timeout: {{ db.lock_timeout }}
    - require:
      - glance_ha: glance_ha-config-file
{%- if db.create %}
      - glance_db: glance_ha-db-database
{%- endif %}
{%- endif %}
