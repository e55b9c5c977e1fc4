"""build.openshift.io: BuildConfig, Build (and the build pods they show as)."""
