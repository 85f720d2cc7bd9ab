-- COMMIT; (a comment)
CREATE TABLE notes (id int, body text);
INSERT INTO notes VALUES (1, 'COMMIT; ROLLBACK; BEGIN;'), (2, E'it\'s\nEND;');
/* BEGIN; /* nested COMMIT; */ END; */
CREATE FUNCTION bump() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RETURN 1;
END;
$$;
CREATE FUNCTION twice(n int) RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN n > 0 THEN n * 2 ELSE 0 END;
END;
DO $do$ BEGIN PERFORM bump(); END $do$;
SAVEPOINT before_update;
UPDATE notes SET body = 'ROLLBACK' WHERE id = 1;
ROLLBACK TO SAVEPOINT before_update;
SELECT 1 AS "COMMIT";
