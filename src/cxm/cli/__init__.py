"""The ``cxm`` command line: each domain adds its commands."""
