-- migrate:up
/* nothing to do on this database */
-- migrate:down
