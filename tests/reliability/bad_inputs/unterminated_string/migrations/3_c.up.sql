CREATE TABLE c (id int);

/* outer /* nested */ still open
SELECT 1;
