CREATE TABLE c (id int);
END;
CREATE TABLE c2 (id int);
/* give up */ ABORT;
