"""image.openshift.io: ImageStream and the kinds that read or write its tags, and Image."""
