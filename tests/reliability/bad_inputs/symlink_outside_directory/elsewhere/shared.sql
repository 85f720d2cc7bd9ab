CREATE TABLE shared (id int PRIMARY KEY);
