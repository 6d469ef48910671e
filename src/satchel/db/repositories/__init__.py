"""Where the SQL of the services lives."""
