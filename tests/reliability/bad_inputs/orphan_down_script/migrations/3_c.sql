-- migrate:up
CREATE TABLE c (id int PRIMARY KEY);
