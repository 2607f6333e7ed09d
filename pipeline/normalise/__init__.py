"""Per-source adapters: a decoded record → normalised columns with raw values + leftovers."""

from collections.abc import Callable
from typing import Any

from pipeline.normalise import cloudtrail, vault
from pipeline.normalise.flatten import Consumed, leftovers

Normaliser = Callable[[dict[str, Any]], tuple[dict[str, Any], Consumed]]

NORMALISERS: dict[str, Normaliser] = {"cloudtrail": cloudtrail.normalise, "vault": vault.normalise}

__all__ = ["NORMALISERS", "Consumed", "Normaliser", "leftovers"]
