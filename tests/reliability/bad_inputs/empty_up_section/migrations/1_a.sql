-- a dbmate migration
-- migrate:up

-- migrate:down
DROP TABLE a;
