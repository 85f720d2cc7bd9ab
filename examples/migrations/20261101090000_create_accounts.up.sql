-- Accounts and their plans. The plan is an enum so the database rejects typos.
CREATE TYPE plan_tier AS ENUM ('free', 'team', 'enterprise');

CREATE TABLE accounts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       text        NOT NULL,
    plan        plan_tier   NOT NULL DEFAULT 'free',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_email_format CHECK (email LIKE '%_@_%')
);

CREATE UNIQUE INDEX accounts_email_key ON accounts (lower(email));
