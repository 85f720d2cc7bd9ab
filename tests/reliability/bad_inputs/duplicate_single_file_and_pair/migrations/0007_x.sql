-- migrate:up
CREATE TABLE x (id int PRIMARY KEY);
-- migrate:down
DROP TABLE x;
