{#- glance_ha.db drops nothing: the database holds every image's metadata, and dropping it is the
    operator's decision (DROP DATABASE by hand). Nothing to remove. #}
glance_ha-db-clean:
  test.nop:
    - name: glance's database and its account are kept
