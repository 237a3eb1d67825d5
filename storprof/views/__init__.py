"""What people read: the verdict first, tables, the report and its charts, one exporter per format."""
