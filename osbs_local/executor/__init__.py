"""The build executor: runs one Build for real (git source, Dockerfile, buildah or a Docker API, push)."""
