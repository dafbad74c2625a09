"""Catalog service: the shared-resource catalog (共享资源目录)."""
