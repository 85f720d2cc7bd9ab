-- undo 2
DROP TABLE b;
UPDATE a SET id = no_such_column;
