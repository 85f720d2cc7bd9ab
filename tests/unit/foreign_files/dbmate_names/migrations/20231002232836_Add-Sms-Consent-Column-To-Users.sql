-- migrate:up
SELECT 2;
