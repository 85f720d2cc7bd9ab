-- +goose Up
SELECT 10;
