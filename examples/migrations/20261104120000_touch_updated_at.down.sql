DROP TRIGGER projects_touch_updated_at ON projects;
DROP FUNCTION touch_updated_at();
ALTER TABLE projects DROP COLUMN updated_at;
