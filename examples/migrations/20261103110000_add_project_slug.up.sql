-- Add a slug, backfill it from the name, then make it required.
ALTER TABLE projects ADD COLUMN slug text;

UPDATE projects
SET slug = regexp_replace(lower(name), '[^a-z0-9]+', '-', 'g')
WHERE slug IS NULL;

ALTER TABLE projects ALTER COLUMN slug SET NOT NULL;
ALTER TABLE projects ADD CONSTRAINT projects_slug_per_account UNIQUE (account_id, slug);
