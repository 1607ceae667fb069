"""Coordinates of the VideoGeneration custom resource (crds/videogenerations.genvid.io.yaml)."""

from __future__ import annotations

GROUP = "genvid.io"
VERSION = "v1alpha1"
PLURAL = "videogenerations"
KIND = "VideoGeneration"
OWNER_LABEL = "genvid.io/owner"
PART_OF_LABELS = {"app.kubernetes.io/part-of": "genvid"}
