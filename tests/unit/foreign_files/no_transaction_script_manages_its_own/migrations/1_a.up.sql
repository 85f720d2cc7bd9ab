-- sqlmig:no-transaction
BEGIN;
CREATE TABLE a (id int);
COMMIT;
BEGIN;
INSERT INTO a VALUES (1);
COMMIT;
