-- +goose Up
SELECT 2;
-- +goose Down
SELECT 1;
