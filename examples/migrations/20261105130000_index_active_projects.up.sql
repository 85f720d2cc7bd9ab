-- sqlmig:no-transaction
-- CREATE INDEX CONCURRENTLY cannot run inside a transaction: sqlmig sends these
-- statements one at a time in autocommit, so writes to projects are never blocked.
CREATE INDEX CONCURRENTLY projects_active_by_account
    ON projects (account_id) WHERE NOT archived;
CREATE INDEX CONCURRENTLY projects_updated_at ON projects (updated_at DESC);
