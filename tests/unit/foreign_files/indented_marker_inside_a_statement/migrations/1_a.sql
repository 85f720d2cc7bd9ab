-- migrate:up
CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$
    -- migrate:down (not a marker here)
    SELECT 'x';
$$;
-- migrate:down
DROP FUNCTION f();
