-- migrate:up
START TRANSACTION;
CREATE TABLE a (id int);
END;
-- migrate:down
begin work;
DROP TABLE a;
commit work;
