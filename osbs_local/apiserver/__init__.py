"""The generic API server: storage, the generic store and its per-kind strategies, selectors, patching, watch,
Table printing, discovery, routing and the HTTPS server.  It knows no kind: they register in osbs_local/kinds."""
