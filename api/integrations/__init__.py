"""Callbacks for training frameworks and hand-offs to experiment trackers (docs/integrations.md).

Each module imports its framework when it is imported itself, never before: `import trainwatch`
costs nothing for a framework the user does not have.
"""
