--+goose up
-- +goose StatementBegin
CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
-- +goose StatementEnd
-- +goose DOWN
DROP FUNCTION f();
