CREATE TABLE a (id int, note text);
INSERT INTO a VALUES (1, 'it''s fine');
-- the next string is missing its closing quote
INSERT INTO a VALUES (2, 'it's broken');
CREATE TABLE b (id int);
