-- dbmate-style single file: both directions in one place.
-- migrate:up
CREATE TABLE projects (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        text   NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    archived    boolean NOT NULL DEFAULT false,
    UNIQUE (account_id, name)
);

INSERT INTO accounts (email, plan) VALUES
    ('ada@example.com', 'enterprise'),
    ('grace@example.com', 'team'),
    ('linus@example.com', 'free');

INSERT INTO projects (account_id, name)
SELECT id, 'default' FROM accounts;

-- migrate:down
DROP TABLE projects;
DELETE FROM accounts WHERE email IN ('ada@example.com', 'grace@example.com', 'linus@example.com');
