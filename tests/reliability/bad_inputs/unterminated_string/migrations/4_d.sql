-- migrate:up
CREATE TABLE d (id int);
-- migrate:down
DROP TABLE d;
SELECT E'it\'s;
