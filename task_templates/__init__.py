"""Bundled task templates (YAML data files); this file only makes the folder a package resource."""
