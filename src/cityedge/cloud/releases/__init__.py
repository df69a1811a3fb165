"""Releases in the control plane: the TUF repository, channels, bundles and rollout policy."""
