CREATE TABLE t (id int);

CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$
BEGIN
  RETURN 1;
END;
$$;  -- closed with the wrong tag

CREATE TABLE u (id int);
