-- migrate:up
CREATE TABLE b (id int);
-- Migrate:Down
DROP TABLE b;
