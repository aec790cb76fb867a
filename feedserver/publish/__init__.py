"""The output folder: staging, journal, atomic renames, the manifest."""
