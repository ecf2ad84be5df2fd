"""The one owner of SQL: schema, migrations and every query."""
