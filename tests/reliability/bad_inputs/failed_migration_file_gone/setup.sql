-- A tracking table made by hand in sqlmig's shape: 1 applied, 2 failed part-way.
CREATE TABLE schema_migrations (
    version text PRIMARY KEY,
    filename text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL,
    status text NOT NULL DEFAULT 'applied'
);
CREATE TABLE a (id int PRIMARY KEY);
INSERT INTO schema_migrations (version, filename, checksum, duration_ms, status) VALUES
    ('1', '1_a.up.sql', 'sha256:634b33d42b556b5b6f28f21aa19a9c5d89df49c73a1df3ce8ff5319146c7d0cc', 3, 'applied'),
    ('2', '2_b.up.sql', 'sha256:0000000000000000000000000000000000000000000000000000000000000000', 9, 'failed');
