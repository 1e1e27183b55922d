-- The roles a Postgres operator creates once for tessera, as a superuser (docker-compose runs this file
-- on the database's first start). Use real passwords outside a demo. See docs/database-roles.md.
create role tessera_owner login password 'tessera-owner';   -- owns the schema; migrations run as it (DATABASE_OWNER_URL)
create role tessera_broker login password 'tessera-broker'; -- the broker at run time (DATABASE_URL); granted its rights by `npm run migrate`
create database tessera owner tessera_owner;
