"""Executors: place scheduling decisions on the window timeline and measure what happens."""
