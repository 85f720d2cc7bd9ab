CREATE INDEX ON users (id);
