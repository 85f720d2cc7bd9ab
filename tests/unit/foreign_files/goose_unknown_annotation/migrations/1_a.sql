-- +goose Up
CREATE TABLE a (id int);
-- +goose Dwon
DROP TABLE a;
