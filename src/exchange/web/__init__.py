"""The browser portal: catalog search and the request-and-authorization flow."""
