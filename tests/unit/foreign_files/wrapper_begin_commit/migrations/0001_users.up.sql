-- wrapped by hand
BEGIN;
CREATE TABLE users (id int);
CREATE INDEX users_id ON users (id);
COMMIT;
