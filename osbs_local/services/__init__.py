"""The services osbs-local starts beside its API: the image registry, a Pulp server, and the PKI they share."""
