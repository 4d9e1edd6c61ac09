"""The API's routes, one module per area; each is thin: parse, call a domain function, shape the answer."""
