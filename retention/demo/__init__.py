"""``retention demo``: the whole cycle on synthetic sources, with the shipped catalog.

At the top beside the command line: it drives the API like a person would.
"""
