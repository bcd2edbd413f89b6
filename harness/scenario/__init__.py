"""Running scenarios: lab up, components, peers, steps, captures, checks, tear-down."""
