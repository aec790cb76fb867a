"""Pure records and the output layout shared by the build and the web app."""
