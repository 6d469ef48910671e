"""The pieces of `make bench`: test data, /proc readings, the two servers, the clients, the report."""
