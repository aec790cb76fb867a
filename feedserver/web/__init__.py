"""The Flask app over the published folder: never parses, renders or reads seeds."""
