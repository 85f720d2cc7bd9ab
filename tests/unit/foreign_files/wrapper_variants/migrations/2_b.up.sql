Begin Transaction;
CREATE TABLE b (id int);
End Transaction;
