CREATE TABLE a (id int);
\i other.sql
  \set ON_ERROR_STOP on
SELECT 'a
\not a command';
\c otherdb
