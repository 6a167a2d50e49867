#!/bin/sh
# One database and one role per service: a service can reach its own data only.
set -eu
for service in referrals risk partners; do
  upper=$(echo "$service" | tr '[:lower:]' '[:upper:]')
  eval password=\${${upper}_DB_PASSWORD}
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
CREATE ROLE $service LOGIN PASSWORD '$password';
CREATE DATABASE upstream_$service OWNER $service;
REVOKE ALL ON DATABASE upstream_$service FROM PUBLIC;
SQL
done
