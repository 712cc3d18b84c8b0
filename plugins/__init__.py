"""ganzoo's built-in plugins. Each module is loaded through the ``ganzoo`` entry-point group, exactly as a
third-party plugin is, and uses only the public API (``ganzoo.hookimpl`` and the component classes)."""
