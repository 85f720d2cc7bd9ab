-- sqlmig:no-transaction
DROP INDEX CONCURRENTLY projects_updated_at;
DROP INDEX CONCURRENTLY projects_active_by_account;
