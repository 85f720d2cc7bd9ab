-- migrate:up
CREATE TABLE e (id int);

-- migrate:down
DROP TABLE e;
COMMIT;
