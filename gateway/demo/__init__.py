"""``silian demo``: a simulated period of the four linkages through a real gateway."""

from gateway.demo.run import DemoOptions, run_demo

__all__ = ["DemoOptions", "run_demo"]
