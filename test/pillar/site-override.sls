---
# A per-site override, layered over pillar.example by the tests (as a site would in its pillar top):
# other VIPs in CIDR form, one VIP only, notifications off, api-level monitoring, extra options.
glance_ha:
  vip:
    internal: 192.168.50.20/23
    public: ''
    nic: ens3
  api:
    port: 9393
    workers: 4
  database:
    host: db.site.example
    password: "p@ss:w$rd/with%chars"
  messaging:
    driver: noop
  keystone:
    auth_url: https://keystone.site.example:5000/v3
    region: SiteOne
  cluster:
    monitor:
      interval: 10s
      timeout: 20s
    monitor_level: api
  endpoints:
    public: http://images.site.example:9393
  config:
    DEFAULT:
      image_size_cap: 53687091200
    taskflow_executor:
      conversion_format: raw
