"""Packet capture at chosen vantage points of a lab."""
