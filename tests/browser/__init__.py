"""The web console in a real browser: Chromium driven by Playwright over a live broker, site agent and console."""
