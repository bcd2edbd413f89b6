"""Scenario and topology model: YAML in, validated dataclasses out."""
