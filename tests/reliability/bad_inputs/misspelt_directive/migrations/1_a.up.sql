-- sqlmig:no-transactoin
CREATE INDEX CONCURRENTLY i ON t (id);
