"""Rendering of deployment artefacts: Mosquitto configs, manifests, sizing."""
