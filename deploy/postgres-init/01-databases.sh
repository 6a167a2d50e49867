#!/bin/sh
# One database and one role per service: a service can reach its own data only. And the
# keystore (the data keys events are sealed with: shared/messaging/sealing.py), one
# database every service reaches through the keystore role.
set -eu
for service in referrals risk partners keystore; do
  upper=$(echo "$service" | tr '[:lower:]' '[:upper:]')
  eval password=\${${upper}_DB_PASSWORD}
  database=$service
  if [ "$service" = keystore ]; then database=keys; fi
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
CREATE ROLE $service LOGIN PASSWORD '$password';
CREATE DATABASE upstream_$database OWNER $service;
REVOKE ALL ON DATABASE upstream_$database FROM PUBLIC;
SQL
done
