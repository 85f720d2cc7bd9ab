"""The application package of the import_error case."""
