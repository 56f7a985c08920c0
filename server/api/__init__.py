"""The JSON API: the sync protocol for devices, and its OpenAPI document."""
