-- sqlmig:no-transaction
BEGIN;
CREATE TABLE a (id int);
INSERT INTO a VALUES (1);
COMMIT;
CREATE INDEX CONCURRENTLY a_id ON a (id);
